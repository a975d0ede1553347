// Every key's rule (docs/graph-api.md section 7.2 and the decisions of 7.4), and the
// edge cases that break naive normalizers.

#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <sstream>

#include "errors.hpp"
#include "identifiers/sha256_hex.hpp"
#include "test_support.hpp"

namespace connector::testing {
namespace {

const std::optional<std::string> kNull = std::nullopt;

TEST(Email, TrimsLowercasesAndKeepsDotsUnderscoresPlus) {
  EXPECT_EQ(normalized("EMAIL", "  John.Smith+ads@Example.COM \t"), "john.smith+ads@example.com");
  EXPECT_EQ(normalized("email", "a_b@c.io"), "a_b@c.io");
  EXPECT_EQ(normalized("EMAIL", "\xC2\xA0mary@example.com\xC2\xA0"), "mary@example.com");  // NBSP
}

TEST(Email, LowercasesNonAsciiWithoutTheDatabaseLocale) {
  EXPECT_EQ(normalized("EMAIL", "J\xC3\x96RG@M\xC3\x9CLLER.DE"), "j\xC3\xB6rg@m\xC3\xBCller.de");
}

TEST(Email, MalformedIsNull) {
  for (const char* bad :
       {"", "   ", "mary", "mary@", "@example.com", "mary@example", "a@@b.com", "a@b@c.com",
        "mary smith@example.com", "mary@exa mple.com", ".mary@example.com", "mary.@example.com",
        "ma..ry@example.com", "mary@-example.com", "mary@example..com", "mary@example.c",
        "mary@127.0.0.1", "mary@example.com.", "<mary@example.com>"})
    EXPECT_EQ(normalized("EMAIL", bad), kNull) << bad;
}

TEST(Email, AlreadyHashedInputIsNotAnAddress) {
  // Hash-looking text is never passed through unless a column is declared
  // pre-hashed; as an e-mail address it is invalid.
  EXPECT_EQ(hashed("EMAIL", "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79"),
            kNull);
}

TEST(Phone, DigitsOnlyWithoutLeadingZeros) {
  EXPECT_EQ(normalized("PHONE", "+1 (650) 555-1212"), "16505551212");
  EXPECT_EQ(normalized("PHONE", "1(650)555-1212"), "16505551212");
  EXPECT_EQ(normalized("PHONE", "0044 20 7946 0958"), "442079460958");
  EXPECT_EQ(normalized("PHONE", "+33 1 42 68 53 00"), "33142685300");
}

TEST(Phone, PlaceholdersAndImpossibleNumbersAreNull) {
  for (const char* bad :
       {"", "  ", "+0000000000", "000", "n/a", "12", "+999 1234567", "1234567890123456789",
        // too short or too long for the calling code's plan
        "+49 123", "+44 2079", "+1 650 555 12125", "+33 1 42 68 53"})
    EXPECT_EQ(normalized("PHONE", bad), kNull) << bad;
}

TEST(Phone, WrittenTrunkPrefixAndExtensionsAreDropped) {
  EXPECT_EQ(normalized("PHONE", "+44 (0)7700 900123"), "447700900123");
  EXPECT_EQ(normalized("PHONE", "+49 (0)30 1234567"), "49301234567");
  EXPECT_EQ(normalized("PHONE", "+49 (0) 30 1234567"), "49301234567");
  EXPECT_EQ(phone_in("+44 (0)20 7946 0958", "DE"), "442079460958");
  // An extension ends the number; it is never part of it.
  for (const char* extended :
       {"+1 650 555 1212 ext 12", "+1 650 555 1212 ext. 12", "+1 650 555 1212 x5",
        "+1 650 555 1212 #5", "+1 650 555 1212;ext=5", "+1-650-555-1212 Extension 123"})
    EXPECT_EQ(normalized("PHONE", extended), "16505551212") << extended;
  EXPECT_EQ(phone_in("(650) 555-1212 ext 7", "US"), "16505551212");
  EXPECT_EQ(phone_in("030 1234567 Durchwahl 12", "DE"), "49301234567");
  // Letters in the number itself are no number we can read.
  EXPECT_EQ(normalized("PHONE", "1-800-FLOWERS"), kNull);
  EXPECT_EQ(phone_in("1-800-FLOWERS", "US"), kNull);
}

TEST(Phone, ANationalNumberWithoutItsCountryIsNull) {
  // A trunk prefix says the number is national; whose, nothing says.
  EXPECT_EQ(normalized("PHONE", "020 7946 0958"), kNull);
  EXPECT_EQ(normalized("PHONE", "(0)20 7946 0958"), kNull);
  EXPECT_EQ(phone_in("020 7946 0958", ""), kNull);
  // An international prefix is not a trunk prefix.
  EXPECT_EQ(normalized("PHONE", "0044 20 7946 0958"), "442079460958");
}

TEST(Phone, DefaultCountryMakesNationalNumbersInternational) {
  EXPECT_EQ(phone_in("020 7946 0958", "GB"), "442079460958");
  EXPECT_EQ(phone_in("020 7946 0958", "United Kingdom"), "442079460958");
  EXPECT_EQ(phone_in("(650)555-1212", "us"), "16505551212");
  EXPECT_EQ(phone_in("06 12 34 56 78", "FR"), "33612345678");
  EXPECT_EQ(phone_in("030 1234567", "DE"), "49301234567");
  // The region's own calling code without "+", and its international prefix.
  EXPECT_EQ(phone_in("49 30 1234567", "DE"), "49301234567");
  EXPECT_EQ(phone_in("011 44 20 7946 0958", "US"), "442079460958");
  // Already international: only the digits rule applies.
  EXPECT_EQ(phone_in("+44 20 7946 0958", "US"), "442079460958");
  EXPECT_EQ(phone_in("0044 20 7946 0958", "FR"), "442079460958");
  EXPECT_EQ(phone_in("", "GB"), kNull);
}

TEST(Phone, ANumberThatDoesNotFitItsCountryIsNotGuessed) {
  // Not a US number; read as international it could be anyone's.
  EXPECT_EQ(phone_in("442079460958", "US"), kNull);
  EXPECT_EQ(phone_in("604 123 456", "ES"), "34604123456");
  // Possible only as a local number (dialled without the area code).
  EXPECT_EQ(phone_in("123", "Germany"), kNull);
  EXPECT_EQ(phone_in("555 1212", "US"), kNull);
}

TEST(Phone, AnUnknownDefaultCountryNeverChangesANumber) {
  std::string out;
  // Malaysia's calling code is 60: "604 123 456" as international is wrong.
  EXPECT_EQ(normalize_phone("604 123 456", "Atlantis", out), PhoneOutcome::UnknownCountry);
  EXPECT_EQ(normalize_phone("604 123 456", "XX", out), PhoneOutcome::UnknownCountry);
  EXPECT_EQ(phone_in("604 123 456", "Atlantis"), kNull);
  // Written in international form, the number carries its own country.
  EXPECT_EQ(phone_in("+1 650 555 1212", "Atlantis"), "16505551212");
  EXPECT_EQ(phone_in("0044 20 7946 0958", "Atlantis"), "442079460958");
  EXPECT_EQ(normalize_phone("n/a", "GB", out), PhoneOutcome::Invalid);
}

TEST(Phone, NoDefaultCountryIsThePhoneKeyAlone) {
  for (const char* value : {"+1 650 555 1212", "16505551212", "020 7946 0958", "604 123 456",
                            "+44 (0)7700 900123", "n/a"}) {
    std::string with_empty, alone;
    bool valid = normalize_phone(value, "", with_empty) == PhoneOutcome::Valid;
    EXPECT_EQ(valid, normalize_identifier(Key::Phone, value, alone)) << value;
    if (valid) {
      EXPECT_EQ(with_empty, alone) << value;
    }
  }
}

TEST(Gender, CapiParamBuilderSynonyms) {
  EXPECT_EQ(normalized("GEN", "Female"), "f");
  EXPECT_EQ(normalized("GEN", " WOMAN "), "f");
  EXPECT_EQ(normalized("GEN", "Mrs"), "f");
  EXPECT_EQ(normalized("GEN", "male"), "m");
  EXPECT_EQ(normalized("GEN", "Mr"), "m");
  EXPECT_EQ(normalized("GEN", "he"), "m");
  for (const char* bad : {"", "x", "unknown", "other", "mf", "femalee"})
    EXPECT_EQ(normalized("GEN", bad), kNull) << bad;
}

TEST(DateOfBirth, WholeDatesInCommonForms) {
  EXPECT_EQ(normalized("DOB", "1997-02-16"), "19970216");
  EXPECT_EQ(normalized("DOB", "1997-02-16 00:00:00+00"), "19970216");
  EXPECT_EQ(normalized("DOB", "1997/2/16"), "19970216");
  EXPECT_EQ(normalized("DOB", "2/16/1997"), "19970216");
  EXPECT_EQ(normalized("DOB", "16/02/1997"), "19970216");  // 16 cannot be a month
  EXPECT_EQ(normalized("DOB", "05.02.1997"), "19970205");  // dots: day first
  EXPECT_EQ(normalized("DOB", "19970216"), "19970216");
  EXPECT_EQ(normalized("DOB", "February 16, 1997"), "19970216");
  EXPECT_EQ(normalized("DOB", "16 Feb 1997"), "19970216");
  EXPECT_EQ(normalized("DOB", "2000-02-29"), "20000229");
}

TEST(DateOfBirth, ImpossibleDatesAreNull) {
  for (const char* bad : {"", "1997-13-01", "1997-02-30", "1900-02-29", "1899-12-31", "3000-01-01",
                          "13/13/1997", "1997", "hello", "97-02-16"})
    EXPECT_EQ(normalized("DOB", bad), kNull) << bad;
}

TEST(DateOfBirth, DayFirstOrderReadsAmbiguousDatesDayFirst) {
  auto dmy = [](Key key, std::string_view value) -> std::optional<std::string> {
    std::string out;
    if (!normalize_identifier(key, value, DateOrder::DayFirst, out)) return std::nullopt;
    return out;
  };
  // 04/01/1950: 1 April month first (the default), 4 January day first.
  EXPECT_EQ(normalized("DOB", "04/01/1950"), "19500401");
  EXPECT_EQ(dmy(Key::DateOfBirth, "04/01/1950"), "19500104");
  EXPECT_EQ(dmy(Key::DateOfBirth, "4-1-1950"), "19500104");
  EXPECT_EQ(dmy(Key::BirthMonth, "04/01/1950"), "01");
  EXPECT_EQ(dmy(Key::BirthDay, "04/01/1950"), "04");
  EXPECT_EQ(normalized("DOBM", "04/01/1950"), "04");
  // Where only one number can be the month, either order reads it so; ISO
  // dates, month names and YYYYMMDD do not depend on the order.
  EXPECT_EQ(dmy(Key::DateOfBirth, "2/16/1997"), "19970216");
  EXPECT_EQ(dmy(Key::DateOfBirth, "1997-02-16"), "19970216");
  EXPECT_EQ(dmy(Key::DateOfBirth, "February 16, 1997"), "19970216");
  EXPECT_EQ(dmy(Key::DateOfBirth, "19970216"), "19970216");
  EXPECT_EQ(dmy(Key::DateOfBirth, "13/13/1997"), kNull);
  // Other keys are not affected.
  EXPECT_EQ(dmy(Key::Email, "Mary@Example.com"), "mary@example.com");
  EXPECT_EQ(dmy(Key::BirthYear, "04/01/1950"), "1950");
}

TEST(DateOfBirth, Parts) {
  EXPECT_EQ(normalized("DOBY", "1997"), "1997");
  EXPECT_EQ(normalized("DOBY", "1899"), kNull);
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  EXPECT_EQ(normalized("DOBY", std::to_string(utc.tm_year + 1900)),
            std::to_string(utc.tm_year + 1900));
  EXPECT_EQ(normalized("DOBY", std::to_string(utc.tm_year + 1901)), kNull);
  EXPECT_EQ(normalized("DOBM", "2"), "02");
  EXPECT_EQ(normalized("DOBM", "12"), "12");
  EXPECT_EQ(normalized("DOBM", "Sept"), "09");
  EXPECT_EQ(normalized("DOBM", "13"), kNull);
  EXPECT_EQ(normalized("DOBM", "0"), kNull);
  EXPECT_EQ(normalized("DOBD", "7"), "07");
  EXPECT_EQ(normalized("DOBD", "31"), "31");
  EXPECT_EQ(normalized("DOBD", "32"), kNull);
}

TEST(Names, LowercaseWithoutWhitespaceOrPunctuation) {
  EXPECT_EQ(normalized("FN", "Na'than-Boile"), "nathanboile");
  EXPECT_EQ(normalized("LN", "Mary Jane"), "maryjane");
  EXPECT_EQ(normalized("LN",
                       "O\xE2\x80\x99"
                       "Brien"),
            "obrien");  // typographic apostrophe
  EXPECT_EQ(normalized("FN", "VAL\xC3\x89RY"), "val\xC3\xA9ry");
  EXPECT_EQ(normalized("FN", "\xD0\x9D\xD0\xB0\xD1\x82\xD0\xB0\xD1\x88\xD0\xB0"),
            "\xD0\xBD\xD0\xB0\xD1\x82\xD0\xB0\xD1\x88\xD0\xB0");  // Наташа
}

TEST(Names, TurkishDottedCapitalIUsesFullLowercase) {
  // Unicode's language-independent lowercase of U+0130 is i + U+0307, as in
  // JavaScript's and Python's lower(), which Meta's SDKs use.
  EXPECT_EQ(normalized("FN", "\xC4\xB0pek"), "i\xCC\x87pek");
  EXPECT_EQ(normalized("FN", "IRMAK"), "irmak");  // dotless capital I -> i, no Turkish tailoring
}

TEST(Names, GermanSharpSIsKept) {
  EXPECT_EQ(normalized("LN",
                       "Stra\xC3\x9F"
                       "e"),
            "stra\xC3\x9F"
            "e");
  EXPECT_EQ(normalized("LN", "STRASSE"), "strasse");
}

TEST(Names, GreekFinalSigma) {
  EXPECT_EQ(normalized("LN", "\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3"),
            "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82");
}

TEST(Names, EmojiAndSymbolsAreRemoved) {
  EXPECT_EQ(normalized("FN", "Mary \xF0\x9F\x98\x80"), "mary");
  EXPECT_EQ(normalized("FN", "\xF0\x9F\x98\x80\xF0\x9F\x91\x8D"), kNull);
  EXPECT_EQ(normalized("FN", "--- ..."), kNull);
}

TEST(Names, AlreadyHashedInputIsHashedAgainNotPassedThrough) {
  // Undeclared columns are always normalized and hashed (section 7.3).
  const std::string digest = "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec";
  auto result = hashed("FN", digest);
  ASSERT_TRUE(result);
  EXPECT_NE(*result, digest);
}

TEST(FirstInitial, FirstCodePointOfTheNormalizedName) {
  EXPECT_EQ(normalized("FI", "John"), "j");
  EXPECT_EQ(normalized("FI", "J."), "j");
  EXPECT_EQ(normalized("FI", " \xC3\x89lodie"), "\xC3\xA9");
  EXPECT_EQ(normalized("FI", "\xEC\xA0\x95"), "\xEC\xA0\x95");
  EXPECT_EQ(normalized("FI", "."), kNull);
}

TEST(City, LettersAToZOnly) {
  EXPECT_EQ(normalized("CT", "Menlo Park"), "menlopark");
  EXPECT_EQ(normalized("CT", "S\xC3\xA3o Paulo"), "sopaulo");
  EXPECT_EQ(normalized("CT", "St. Louis"), "stlouis");
  EXPECT_EQ(normalized("CT", "123"), kNull);
}

TEST(State, NamesBecomeCodesOtherRegionsStayWhole) {
  EXPECT_EQ(normalized("ST", "California"), "ca");
  EXPECT_EQ(normalized("ST", "New York"), "ny");
  EXPECT_EQ(normalized("ST", "new-york"), "ny");
  EXPECT_EQ(normalized("ST", "District of Columbia"), "dc");
  EXPECT_EQ(normalized("ST",
                       "Qu\xC3\xA9"
                       "bec"),
            "qc");
  EXPECT_EQ(normalized("ST", "British Columbia"), "bc");
  EXPECT_EQ(normalized("ST", "TX"), "tx");
  EXPECT_EQ(normalized("ST", "Bavaria"), "bavaria");
  EXPECT_EQ(normalized("ST", "  "), kNull);
}

TEST(Zip, UsZipPlusFourAndInternationalCodes) {
  EXPECT_EQ(normalized("ZIP", "94035-1234"), "94035");
  EXPECT_EQ(normalized("ZIP", " M1 1AE "), "m11ae");
  EXPECT_EQ(normalized("ZIP", "1234-567"), "1234567");
  EXPECT_EQ(normalized("ZIP",
                       "SW1A\xC2\xA0"
                       "1AA"),
            "sw1a1aa");
  EXPECT_EQ(normalized("ZIP", "1"), kNull);
  EXPECT_EQ(normalized("ZIP", " - "), kNull);
  EXPECT_EQ(normalized("ZIP", "SW1A.1AA"), "sw1a1aa");
  EXPECT_EQ(normalized("ZIP", "94035 - 1234"), "94035");
}

TEST(Country, CodesNamesAndAliases) {
  EXPECT_EQ(normalized("COUNTRY", "US"), "us");
  EXPECT_EQ(normalized("COUNTRY", "USA"), "us");
  EXPECT_EQ(normalized("COUNTRY", "United States of America"), "us");
  EXPECT_EQ(normalized("COUNTRY", "UK"), "gb");
  EXPECT_EQ(normalized("COUNTRY", "Germany"), "de");
  EXPECT_EQ(normalized("COUNTRY", "C\xC3\xB4te d'Ivoire"), "ci");
  EXPECT_EQ(normalized("COUNTRY", "XX"), kNull);
  EXPECT_EQ(normalized("COUNTRY", ""), kNull);
}

TEST(Country, NamesInEveryLanguageAndScript) {
  const std::pair<const char*, const char*> cases[] = {
      {"Deutschland", "de"}, {"Espa\xC3\xB1" "a", "es"}, {"Brasil", "br"},
      {"Nederland", "nl"}, {"\xC3\x96sterreich", "at"}, {"Schweiz", "ch"},
      {"Italia", "it"}, {"\xE6\x97\xA5\xE6\x9C\xAC", "jp"},                 // 日本
      {"\xD0\xA0\xD0\xBE\xD1\x81\xD1\x81\xD0\xB8\xD1\x8F", "ru"},  // Россия
      {"Polska", "pl"}, {"Sverige", "se"}, {"Magyarorsz\xC3\xA1g", "hu"},
      {"\xCE\x95\xCE\xBB\xCE\xBB\xCE\xAC\xCE\xB4\xCE\xB1", "gr"},  // Ελλάδα
      {"\xEB\x8C\x80\xED\x95\x9C\xEB\xAF\xBC\xEA\xB5\xAD", "kr"},  // 대한민국
      {"M\xC3\xA9xico", "mx"}, {"Belgique", "be"}, {"Suisse", "ch"}};
  for (const auto& [name, code] : cases) EXPECT_EQ(normalized("COUNTRY", name), code) << name;
  // Case, accents and punctuation do not matter.
  EXPECT_EQ(normalized("COUNTRY", " \xC3\x96STERREICH "), "at");
  EXPECT_EQ(normalized("COUNTRY", "osterreich"), "at");
  EXPECT_EQ(normalized("COUNTRY", "espana"), "es");
  EXPECT_EQ(normalized("COUNTRY", "ESPA\xC3\x91" "A."), "es");
}

TEST(Country, ANameTwoCountriesShareIsNoCountry) {
  // "Kongo" is one Congo in one language and the other in another.
  EXPECT_EQ(normalized("COUNTRY", "Kongo"), kNull);
  // English decides when another language gives a name to another country.
  EXPECT_EQ(normalized("COUNTRY", "Georgia"), "ge");
}

TEST(Phone, CountryInItsOwnLanguage) {
  EXPECT_EQ(phone_in("604 123 456", "Espa\xC3\xB1" "a"), "34604123456");
  EXPECT_EQ(phone_in("030 1234567", "Deutschland"), "49301234567");
  EXPECT_EQ(phone_in("03-1234-5678", "\xE6\x97\xA5\xE6\x9C\xAC"), "81312345678");
}

TEST(UnhashedKeys, MadidLowercasedExternIdVerbatim) {
  EXPECT_EQ(hashed("MADID", " AB12CD-E345 "), "ab12cd-e345");
  EXPECT_EQ(hashed("MADID", "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"),
            kNull);
  EXPECT_EQ(hashed("EXTERN_ID", "crm-000123"), "crm-000123");
  EXPECT_EQ(hashed("EXTERN_ID", " CRM 7 "), " CRM 7 ");
  EXPECT_EQ(hashed("EXTERN_ID", "   "), kNull);
  // Longer than any real one: Meta would refuse the batch that carried it.
  std::string e_acute = "\xc3\xa9";
  std::string longest;
  for (int i = 0; i < 256; ++i) longest += e_acute;
  EXPECT_EQ(hashed("EXTERN_ID", longest), longest);
  EXPECT_EQ(hashed("EXTERN_ID", longest + e_acute), kNull);
  EXPECT_EQ(hashed("MADID", std::string(256, 'a')), std::string(256, 'a'));
  EXPECT_EQ(hashed("MADID", std::string(257, 'a')), kNull);
  EXPECT_EQ(hashed("MADID", ""), kNull);
  // The limit holds for what is sent: 200 capital dotted I (U+0130) lowercase
  // to 400 code points (i and U+0307 each), too long; a value is never one
  // that normalizing again would refuse.
  std::string dotted_capital_i;
  for (int i = 0; i < 200; ++i) dotted_capital_i += "\xc4\xb0";
  EXPECT_EQ(hashed("MADID", dotted_capital_i), kNull);
  std::optional<std::string> lowered = normalized("MADID", dotted_capital_i.substr(0, 2 * 128));
  ASSERT_TRUE(lowered);
  EXPECT_EQ(lowered->size(), 128 * 3u);  // 128 times i (1 byte) and U+0307 (2 bytes)
  EXPECT_EQ(normalized("MADID", *lowered), lowered);
}

class EveryKey : public ::testing::TestWithParam<std::size_t> {
 protected:
  std::string key() const { return std::string(key_spec_at(GetParam()).name); }
};

TEST_P(EveryKey, EmptyAndWhitespaceOnlyAreNull) {
  for (const char* blank : {"", " ", "\t\n ", "\xC2\xA0", "\xE3\x80\x80"})
    EXPECT_EQ(hashed(key(), blank), kNull) << key();
}

TEST_P(EveryKey, InvalidUtf8IsNull) {
  for (const char* bad : {"mary\xFF@example.com", "\xC3", "\xE0\x80\xAF", "\xED\xA0\x80"})
    EXPECT_EQ(hashed(key(), bad), kNull) << key();
}

TEST_P(EveryKey, NeverTheHashOfTheEmptyString) {
  const std::string empty_digest =
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  for (const char* value : {"", "-", "'", "\xF0\x9F\x98\x80", "0", "+", ".", "@"})
    EXPECT_NE(hashed(key(), value), empty_digest) << key();
}

TEST_P(EveryKey, TenMegabyteInputTerminates) {
  std::string huge(10 * 1024 * 1024, 'a');
  huge.replace(huge.size() / 2, 2, "\xC3\xA9");
  auto result = hashed(key(), huge);
  if (result && key_spec_at(GetParam()).hashed) {
    EXPECT_TRUE(looks_like_sha256_hex(*result));
  }
}

TEST_P(EveryKey, HashedKeysGiveLowercaseHexOfTheNormalizedValue) {
  for (const char* value :
       {"Mary", "1997-02-16", "+44 20 7946 0958", "mary@example.com", "US", "F"}) {
    auto value_normalized = normalized(key(), value);
    auto value_hashed = hashed(key(), value);
    ASSERT_EQ(value_normalized.has_value(), value_hashed.has_value());
    if (!value_hashed) continue;
    if (!key_spec_at(GetParam()).hashed) {
      EXPECT_EQ(value_hashed, value_normalized);
      continue;
    }
    char expected[sha256_hex_length];
    sha256_hex(*value_normalized, expected);
    EXPECT_EQ(*value_hashed, std::string(expected, sha256_hex_length));
  }
}

TEST_P(EveryKey, NormalizingTwiceChangesNothing) {
  for (const char* value :
       {"Mary-Jane O'Neil", "1997-02-16", "+44 20 7946 0958", "JOHN@EXAMPLE.COM", "New York",
        "SW1A 1AA", "United Kingdom", "Female", "\xC4\xB0stanbul"}) {
    auto once = normalized(key(), value);
    if (once) {
      EXPECT_EQ(normalized(key(), *once), once) << key() << ": " << value;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Keys, EveryKey, ::testing::Range<std::size_t>(0, key_count),
                         [](const auto& param_info) {
                           return std::string(key_spec_at(param_info.param).name);
                         });

TEST(Keys, TheReadmeListsEveryColumnNameMatchedAutomatically) {
  std::ifstream file(std::string(CONNECTOR_SOURCE_DIR) + "/README.md");
  ASSERT_TRUE(file) << "README.md not found";
  std::stringstream text;
  text << file.rdbuf();
  std::string readme = text.str();
  // The paragraph of the mapping, its line breaks undone.
  std::size_t start = readme.find("is matched by its column's name");
  ASSERT_NE(start, std::string::npos);
  std::string paragraph = readme.substr(start, readme.find("\n- **", start) - start);
  for (std::size_t i = 0; i < key_count; ++i) {
    std::string_view names = key_spec_at(i).column_names;
    for (std::size_t at = 0; at < names.size();) {
      std::size_t end = std::min(names.find(' ', at), names.size());
      std::string name(names.substr(at, end - at));
      EXPECT_NE(paragraph.find("`" + name + "`"), std::string::npos)
          << key_spec_at(i).name << " matches a column named " << name
          << " but the README does not say so";
      at = end + 1;
    }
  }
}

TEST(Keys, NamesAreCaseInsensitiveAndUnknownNamesListTheValidOnes) {
  EXPECT_EQ(find_key("email"), Key::Email);
  EXPECT_EQ(find_key("Extern_Id"), Key::ExternId);
  EXPECT_EQ(find_key("E-MAIL"), std::nullopt);
  try {
    parse_key("SSN");
    FAIL() << "parse_key accepted an unknown key";
  } catch (const InvalidArgument& error) {
    EXPECT_STREQ(error.what(), "unknown identifier key \"SSN\"");
    EXPECT_NE(
        error.hint().find("EMAIL, PHONE, GEN, DOB, DOBY, DOBM, DOBD, FN, LN, FI, CT, ST, ZIP, "
                          "COUNTRY, MADID, EXTERN_ID"),
        std::string::npos);
  }
}

}  // namespace
}  // namespace connector::testing
