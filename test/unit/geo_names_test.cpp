// COUNTRY and ST hash to a match only when they are exact codes, so a wrong or
// missing table row silently costs match rate; these tests pin the data down.
#include "identifiers/geo_names.hpp"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using connector::geo::country_code;
using connector::geo::is_country_code;
using connector::geo::region_code;
namespace detail = connector::geo::detail;

std::string show(std::optional<std::string_view> v) {
  return v ? std::string(*v) : std::string("<none>");
}

void expect_sorted_unique(const detail::Table& t, const char* what) {
  ASSERT_NE(t.entries, nullptr) << what;
  ASSERT_GT(t.size, 0u) << what;
  for (std::size_t i = 1; i < t.size; ++i) {
    EXPECT_LT(t.entries[i - 1].name, t.entries[i].name)
        << what << ": row " << i << " (" << t.entries[i].name << ") out of order or duplicated";
  }
}

bool lower_ascii(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < 'a' || c > 'z') return false;
  }
  return true;
}

TEST(GeoNamesTables, SortedWithoutDuplicateKeys) {
  expect_sorted_unique(detail::alpha2_table(), "alpha2");
  expect_sorted_unique(detail::alpha3_table(), "alpha3");
  expect_sorted_unique(detail::country_name_table(), "country names");
  expect_sorted_unique(detail::region_name_table(), "region names");
}

TEST(GeoNamesTables, RowsAreLowercaseLettersWithTwoLetterCodes) {
  for (const auto& t : {detail::alpha2_table(), detail::alpha3_table(),
                        detail::country_name_table(), detail::region_name_table()}) {
    for (std::size_t i = 0; i < t.size; ++i) {
      EXPECT_TRUE(lower_ascii(t.entries[i].name)) << t.entries[i].name;
      EXPECT_TRUE(lower_ascii(t.entries[i].code)) << t.entries[i].name;
      EXPECT_EQ(t.entries[i].code.size(), 2u) << t.entries[i].name;
    }
  }
}

TEST(GeoNamesTables, ExactlyTheIsoAlpha2Codes) {
  const auto a2 = detail::alpha2_table();
  EXPECT_EQ(a2.size, 249u);
  for (std::size_t i = 0; i < a2.size; ++i) {
    EXPECT_EQ(a2.entries[i].name, a2.entries[i].code);
    EXPECT_TRUE(is_country_code(a2.entries[i].code)) << a2.entries[i].code;
    EXPECT_EQ(show(country_code(a2.entries[i].code)), std::string(a2.entries[i].code));
  }
}

TEST(GeoNamesTables, Alpha3IsABijectionOntoAlpha2) {
  const auto a3 = detail::alpha3_table();
  EXPECT_EQ(a3.size, 249u);
  std::set<std::string_view> targets;
  for (std::size_t i = 0; i < a3.size; ++i) {
    EXPECT_EQ(a3.entries[i].name.size(), 3u) << a3.entries[i].name;
    EXPECT_TRUE(is_country_code(a3.entries[i].code)) << a3.entries[i].name;
    EXPECT_TRUE(targets.insert(a3.entries[i].code).second)
        << "two alpha-3 for " << a3.entries[i].code;
    EXPECT_EQ(show(country_code(a3.entries[i].name)), std::string(a3.entries[i].code));
  }
  EXPECT_EQ(targets.size(), 249u);
}

TEST(GeoNamesTables, EveryCountryHasANameAndEveryNameResolves) {
  const auto names = detail::country_name_table();
  std::set<std::string_view> covered;
  for (std::size_t i = 0; i < names.size; ++i) {
    const auto& e = names.entries[i];
    EXPECT_TRUE(is_country_code(e.code)) << e.name << " -> " << e.code;
    // A name that is also a code would be answered by the code tables instead.
    EXPECT_FALSE(e.name.size() == 2 && is_country_code(e.name)) << e.name;
    EXPECT_EQ(show(country_code(e.name)), std::string(e.code)) << e.name;
    covered.insert(e.code);
  }
  EXPECT_EQ(covered.size(), 249u);
}

TEST(GeoNamesTables, RegionNamesResolve) {
  const auto regions = detail::region_name_table();
  for (std::size_t i = 0; i < regions.size; ++i) {
    EXPECT_GT(regions.entries[i].name.size(), 2u) << regions.entries[i].name;
    EXPECT_EQ(show(region_code(regions.entries[i].name)), std::string(regions.entries[i].code));
  }
}

TEST(CountryCode, SpotChecksAcrossContinents) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      // Americas
      {"unitedstates", "us"},
      {"unitedstatesofamerica", "us"},
      {"america", "us"},
      {"usa", "us"},
      {"canada", "ca"},
      {"can", "ca"},
      {"mexico", "mx"},
      {"brazil", "br"},
      {"bra", "br"},
      {"argentina", "ar"},
      {"bolivia", "bo"},
      {"boliviaplurinationalstateof", "bo"},
      {"venezuela", "ve"},
      {"venezuelabolivarianrepublicof", "ve"},
      {"puertorico", "pr"},
      {"trinidadandtobago", "tt"},
      {"saintvincentandthegrenadines", "vc"},
      {"curacao", "cw"},
      // Europe
      {"unitedkingdom", "gb"},
      {"gbr", "gb"},
      {"uk", "gb"},
      {"greatbritain", "gb"},
      {"england", "gb"},
      {"scotland", "gb"},
      {"wales", "gb"},
      {"northernireland", "gb"},
      {"germany", "de"},
      {"deu", "de"},
      {"france", "fr"},
      {"holland", "nl"},
      {"thenetherlands", "nl"},
      {"netherlands", "nl"},
      {"russia", "ru"},
      {"russianfederation", "ru"},
      {"czechia", "cz"},
      {"czechrepublic", "cz"},
      {"macedonia", "mk"},
      {"northmacedonia", "mk"},
      {"moldova", "md"},
      {"moldovarepublicof", "md"},
      {"vaticancity", "va"},
      {"holysee", "va"},
      {"alandislands", "ax"},
      {"ireland", "ie"},
      {"bosniaandherzegovina", "ba"},
      {"switzerland", "ch"},
      // Asia and the Middle East
      {"turkey", "tr"},
      {"turkiye", "tr"},
      {"southkorea", "kr"},
      {"korearepublicof", "kr"},
      {"northkorea", "kp"},
      {"vietnam", "vn"},
      {"laos", "la"},
      {"burma", "mm"},
      {"myanmar", "mm"},
      {"iran", "ir"},
      {"syria", "sy"},
      {"palestine", "ps"},
      {"taiwan", "tw"},
      {"hongkong", "hk"},
      {"macau", "mo"},
      {"macao", "mo"},
      {"uae", "ae"},
      {"unitedarabemirates", "ae"},
      {"ksa", "sa"},
      {"saudiarabia", "sa"},
      {"india", "in"},
      {"ind", "in"},
      {"japan", "jp"},
      {"china", "cn"},
      {"easttimor", "tl"},
      {"timorleste", "tl"},
      // Africa
      {"cotedivoire", "ci"},
      {"ivorycoast", "ci"},
      {"tanzania", "tz"},
      {"eswatini", "sz"},
      {"swaziland", "sz"},
      {"capeverde", "cv"},
      {"caboverde", "cv"},
      {"southafrica", "za"},
      {"zaf", "za"},
      {"nigeria", "ng"},
      {"niger", "ne"},
      {"egypt", "eg"},
      {"southsudan", "ss"},
      {"saotomeandprincipe", "st"},
      {"westernsahara", "eh"},
      // Oceania and elsewhere
      {"australia", "au"},
      {"newzealand", "nz"},
      {"papuanewguinea", "pg"},
      {"micronesia", "fm"},
      {"samoa", "ws"},
      {"americansamoa", "as"},
      {"antarctica", "aq"},
      {"bouvetisland", "bv"},
      {"falklandislandsmalvinas", "fk"},
      {"reunion", "re"},
      {"saintbarthelemy", "bl"},
      {"sintmaarten", "sx"},
      {"saintmartinfrenchpart", "mf"},
      {"bonairesinteustatiusandsaba", "bq"},
      {"virginislandsbritish", "vg"},
      {"virginislandsus", "vi"},
  };
  ASSERT_GE(cases.size(), 40u);
  for (const auto& [name, code] : cases) {
    EXPECT_EQ(show(country_code(name)), code) << name;
  }
}

TEST(CountryCode, AmbiguousNamesFollowTheDocumentedDecisions) {
  EXPECT_EQ(show(country_code("georgia")), "ge");
  EXPECT_EQ(show(region_code("georgia")), "ga");
  EXPECT_EQ(show(country_code("congo")), "cg");
  EXPECT_EQ(show(country_code("congobrazzaville")), "cg");
  EXPECT_EQ(show(country_code("republicofthecongo")), "cg");
  EXPECT_EQ(show(country_code("democraticrepublicofthecongo")), "cd");
  EXPECT_EQ(show(country_code("congothedemocraticrepublicofthe")), "cd");
  EXPECT_EQ(show(country_code("drcongo")), "cd");
  EXPECT_EQ(show(country_code("congokinshasa")), "cd");
  EXPECT_EQ(show(country_code("zaire")), "cd");
  EXPECT_EQ(show(country_code("korea")), "<none>");
  EXPECT_EQ(show(country_code("northkorea")), "kp");
  EXPECT_EQ(show(country_code("southkorea")), "kr");
  EXPECT_EQ(show(country_code("virginislands")), "<none>");
  EXPECT_EQ(show(region_code("virginislands")), "vi");
  EXPECT_EQ(show(country_code("saintmartin")), "mf");
  EXPECT_EQ(show(region_code("washington")), "wa");
  EXPECT_EQ(show(region_code("washingtondc")), "dc");
}

TEST(CountryCode, Negatives) {
  EXPECT_EQ(show(country_code("")), "<none>");
  EXPECT_EQ(show(country_code("xx")), "<none>");
  EXPECT_EQ(show(country_code("unitedstatez")), "<none>");
  EXPECT_EQ(show(country_code("unitedstatesx")), "<none>");
  EXPECT_EQ(show(country_code("invalidcountry")), "<none>");
  EXPECT_EQ(show(country_code("kosovo")), "<none>");
  EXPECT_EQ(show(country_code("california")), "<none>");
  EXPECT_EQ(show(country_code("a")), "<none>");
  EXPECT_EQ(show(country_code("zzz")), "<none>");
  // Callers squash first; anything else simply does not match.
  EXPECT_EQ(show(country_code("US")), "<none>");
  EXPECT_EQ(show(country_code("united states")), "<none>");
}

TEST(IsCountryCode, OnlyAssignedAlpha2) {
  EXPECT_TRUE(is_country_code("us"));
  EXPECT_TRUE(is_country_code("gb"));
  EXPECT_TRUE(is_country_code("ss"));
  EXPECT_TRUE(is_country_code("bq"));
  EXPECT_TRUE(is_country_code("ax"));
  EXPECT_TRUE(is_country_code("zw"));
  EXPECT_TRUE(is_country_code("ad"));
  EXPECT_FALSE(is_country_code("uk"));
  EXPECT_FALSE(is_country_code("eu"));
  EXPECT_FALSE(is_country_code("xk"));
  EXPECT_FALSE(is_country_code("xx"));
  EXPECT_FALSE(is_country_code("an"));  // Netherlands Antilles, withdrawn
  EXPECT_FALSE(is_country_code(""));
  EXPECT_FALSE(is_country_code("u"));
  EXPECT_FALSE(is_country_code("usa"));
  EXPECT_FALSE(is_country_code("US"));
  // "uk" is no code, but the name table still knows it.
  EXPECT_EQ(show(country_code("uk")), "gb");
}

TEST(RegionCode, AllStatesDcTerritoriesAndMilitary) {
  const std::map<std::string, std::string> us = {
      {"alabama", "al"},       {"alaska", "ak"},       {"arizona", "az"},
      {"arkansas", "ar"},      {"california", "ca"},   {"colorado", "co"},
      {"connecticut", "ct"},   {"delaware", "de"},     {"florida", "fl"},
      {"georgia", "ga"},       {"hawaii", "hi"},       {"idaho", "id"},
      {"illinois", "il"},      {"indiana", "in"},      {"iowa", "ia"},
      {"kansas", "ks"},        {"kentucky", "ky"},     {"louisiana", "la"},
      {"maine", "me"},         {"maryland", "md"},     {"massachusetts", "ma"},
      {"michigan", "mi"},      {"minnesota", "mn"},    {"mississippi", "ms"},
      {"missouri", "mo"},      {"montana", "mt"},      {"nebraska", "ne"},
      {"nevada", "nv"},        {"newhampshire", "nh"}, {"newjersey", "nj"},
      {"newmexico", "nm"},     {"newyork", "ny"},      {"northcarolina", "nc"},
      {"northdakota", "nd"},   {"ohio", "oh"},         {"oklahoma", "ok"},
      {"oregon", "or"},        {"pennsylvania", "pa"}, {"rhodeisland", "ri"},
      {"southcarolina", "sc"}, {"southdakota", "sd"},  {"tennessee", "tn"},
      {"texas", "tx"},         {"utah", "ut"},         {"vermont", "vt"},
      {"virginia", "va"},      {"washington", "wa"},   {"westvirginia", "wv"},
      {"wisconsin", "wi"},     {"wyoming", "wy"},
  };
  ASSERT_EQ(us.size(), 50u);
  std::set<std::string> state_codes;
  for (const auto& [name, code] : us) {
    EXPECT_EQ(show(region_code(name)), code) << name;
    state_codes.insert(code);
  }
  EXPECT_EQ(state_codes.size(), 50u);

  const std::vector<std::pair<const char*, const char*>> other = {
      {"districtofcolumbia", "dc"},
      {"washingtondc", "dc"},
      {"puertorico", "pr"},
      {"guam", "gu"},
      {"usvirginislands", "vi"},
      {"americansamoa", "as"},
      {"northernmarianaislands", "mp"},
      {"unitedstatesminoroutlyingislands", "um"},
      {"armedforcesamericas", "aa"},
      {"armedforceseurope", "ae"},
      {"armedforcespacific", "ap"},
  };
  for (const auto& [name, code] : other) {
    EXPECT_EQ(show(region_code(name)), code) << name;
  }
}

TEST(RegionCode, CanadianProvincesAndTerritories) {
  const std::vector<std::pair<const char*, const char*>> ca = {
      {"alberta", "ab"},      {"britishcolumbia", "bc"},         {"manitoba", "mb"},
      {"newbrunswick", "nb"}, {"newfoundlandandlabrador", "nl"}, {"novascotia", "ns"},
      {"ontario", "on"},      {"princeedwardisland", "pe"},      {"quebec", "qc"},
      {"saskatchewan", "sk"}, {"northwestterritories", "nt"},    {"nunavut", "nu"},
      {"yukon", "yt"},
  };
  ASSERT_EQ(ca.size(), 13u);
  for (const auto& [name, code] : ca) {
    EXPECT_EQ(show(region_code(name)), code) << name;
  }
  EXPECT_EQ(show(region_code("newfoundland")), "nl");
  EXPECT_EQ(show(region_code("yukonterritory")), "yt");
  EXPECT_EQ(show(region_code("colombiebritannique")), "bc");
}

TEST(RegionCode, Negatives) {
  EXPECT_EQ(show(region_code("")), "<none>");
  // Two-letter codes are the caller's business.
  EXPECT_EQ(show(region_code("ca")), "<none>");
  EXPECT_EQ(show(region_code("ny")), "<none>");
  // Other countries' regions are kept whole by the caller.
  EXPECT_EQ(show(region_code("bavaria")), "<none>");
  EXPECT_EQ(show(region_code("germany")), "<none>");
  EXPECT_EQ(show(region_code("californiax")), "<none>");
  EXPECT_EQ(show(region_code("newyorkcity")), "<none>");
}

}  // namespace
