// Export mapping, row encoding and payload bodies: what reaches Meta for a
// given segment row.

#include "export/export_rows.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "export/members.hpp"
#include "identifiers/identifier.hpp"

namespace connector {
namespace {

using Values = std::vector<std::optional<std::string_view>>;

std::string hashed(Key key, std::string_view value) {
  std::string out;
  EXPECT_TRUE(hash_identifier(key, value, out)) << value;
  return out;
}

// The payload row the encoded cells make, as Meta receives it.
nlohmann::json payload_row(const ExportMapping& mapping, const std::vector<std::string>& cells) {
  MemberFormat format(mapping);
  std::string member, row;
  format.encode(cells, member);
  format.append_row_json(member, row);
  return nlohmann::json::parse(row);
}

TEST(ExportMapping, ColumnsMatchedByNameInKeyTableOrder) {
  auto mapping = resolve_mapping(
      "crm.vip", {"id", "Last_Name", "email", "first_name", "zip", "birth_date"}, "", "");
  EXPECT_EQ(mapping.schema,
            (std::vector<std::string>{"EMAIL", "DOBY", "DOBM", "DOBD", "FN", "LN", "ZIP"}));
  EXPECT_EQ(mapping.columns[0].column, 2u);
  EXPECT_EQ(mapping.columns[2].column_name, "first_name");
  EXPECT_EQ(mapping.key_identifier, KeyIdentifier::Any);
}

TEST(ExportMapping, ExplicitMappingWithPrehashedColumn) {
  auto mapping = resolve_mapping(
      "crm.vip", {"mail", "tel", "email_sha"},
      R"({"phone": "tel", "EMAIL": {"column": "email_sha", "prehashed": true}})", "phone");
  ASSERT_EQ(mapping.columns.size(), 2u);
  EXPECT_EQ(mapping.columns[0].key, Key::Email);
  EXPECT_TRUE(mapping.columns[0].prehashed);
  EXPECT_EQ(mapping.columns[1].column_name, "tel");
  EXPECT_EQ(mapping.key_identifier, KeyIdentifier::Phone);
}

TEST(ExportMapping, ErrorsBeforeAnythingIsSent) {
  std::vector<std::string> columns = {"email", "first_name"};
  EXPECT_THROW(resolve_mapping("s", columns, R"({"EMAIL": "mail"})", ""), UndefinedColumn);
  EXPECT_THROW(resolve_mapping("s", columns, R"({"SSN": "email"})", ""), InvalidArgument);
  EXPECT_THROW(resolve_mapping("s", columns, R"(["email"])", ""), InvalidArgument);
  EXPECT_THROW(resolve_mapping("s", columns, "", "phone"), UndefinedColumn);
  EXPECT_THROW(resolve_mapping("s", columns, "", "fax"), InvalidArgument);
  EXPECT_THROW(resolve_mapping("s", {"city"}, "", ""), UndefinedColumn);
  EXPECT_THROW(
      resolve_mapping("s", columns, R"({"EXTERN_ID": {"column": "email", "prehashed": true}})", ""),
      InvalidArgument);
  EXPECT_THROW(resolve_mapping("s", {"dob", "y", "email"},
                               R"({"DOB": "dob", "DOBY": "y", "EMAIL": "email"})", ""),
               InvalidArgument);
  try {
    resolve_mapping("crm.vip", columns, R"({"EMAIL": "mail"})", "");
  } catch (const UndefinedColumn& error) {
    EXPECT_STREQ(error.what(), "column \"mail\" mapped to EMAIL does not exist in segment crm.vip");
    EXPECT_EQ(error.hint(), "Its columns are: email, first_name.");
  }
}

TEST(ExportMapping, AMappingOverridesSomeKeysAndTheOthersAreMatchedByName) {
  std::vector<std::string> columns = {"email", "fname", "lname", "zip", "phone"};
  auto mapping =
      resolve_mapping("crm.vip", columns, R"({"FN": "fname", "LN": "lname", "PHONE": null})", "");
  EXPECT_EQ(mapping.schema, (std::vector<std::string>{"EMAIL", "FN", "LN", "ZIP"}));
  EXPECT_FALSE(mapping.columns[0].from_mapping);
  EXPECT_TRUE(mapping.columns[1].from_mapping);
  EXPECT_EQ(nlohmann::json::parse(describe_mapping(mapping)),
            nlohmann::json::parse(R"({"EMAIL": {"column": "email", "by": "name"},
                                      "FN": {"column": "fname", "by": "mapping"},
                                      "LN": {"column": "lname", "by": "mapping"},
                                      "ZIP": {"column": "zip", "by": "name"}})"));
  // An empty object is no mapping at all: every key by name.
  EXPECT_EQ(resolve_mapping("s", columns, "{}", "").schema,
            resolve_mapping("s", columns, "", "").schema);
}

TEST(ExportMapping, AColumnTheMappingUsesIsNotMatchedToAnotherKey) {
  auto mapping = resolve_mapping("s", {"phone", "mobile", "email"}, R"({"EMAIL": "phone"})", "");
  // "phone" feeds EMAIL as asked; PHONE finds only "mobile" by name.
  ASSERT_EQ(mapping.columns.size(), 2u);
  EXPECT_EQ(mapping.columns[0].column_name, "phone");
  EXPECT_EQ(mapping.columns[1].key, Key::Phone);
  EXPECT_EQ(mapping.columns[1].column_name, "mobile");
}

TEST(ExportMapping, TwoColumnsFittingOneKeyAreAnErrorNamingBoth) {
  std::vector<std::string> columns = {"email", "email_address", "phone"};
  try {
    resolve_mapping("crm.vip", columns, "", "");
    FAIL() << "two e-mail columns were accepted";
  } catch (const AmbiguousColumn& error) {
    EXPECT_STREQ(error.what(),
                 "columns \"email\" and \"email_address\" of segment crm.vip both fit EMAIL");
    EXPECT_NE(error.hint().find(R"({"EMAIL": "email"})"), std::string::npos);
  }
  // The mapping settles it either way.
  EXPECT_EQ(resolve_mapping("s", columns, R"({"EMAIL": "email_address"})", "").columns[0].column_name,
            "email_address");
  EXPECT_EQ(resolve_mapping("s", columns, R"({"EMAIL": null})", "").schema,
            std::vector<std::string>{"PHONE"});
  EXPECT_THROW(resolve_mapping("s", {"Email", "email"}, "", ""), AmbiguousColumn);
}

TEST(ExportMapping, MappedDatePartsLeaveADateColumnFoundByNameOut) {
  auto parts = resolve_mapping("s", {"birth_date", "y", "email"}, R"({"DOBY": "y"})", "");
  EXPECT_EQ(parts.schema, (std::vector<std::string>{"EMAIL", "DOBY"}));
  auto whole = resolve_mapping("s", {"born", "birth_year", "email"}, R"({"DOB": "born"})", "");
  EXPECT_EQ(whole.schema, (std::vector<std::string>{"EMAIL", "DOBY", "DOBM", "DOBD"}));
}

TEST(ExportMapping, AKeyIsMappedOnce) {
  EXPECT_THROW(resolve_mapping("s", {"email", "phone"}, R"({"EMAIL": "email", "email": null})", ""),
               InvalidArgument);
  EXPECT_THROW(resolve_mapping("s", {"email"}, R"({"EMAIL": 5})", ""), InvalidArgument);
  EXPECT_EQ(resolve_mapping("s", {"email"}, "", "any").key_identifier, KeyIdentifier::Any);
}

TEST(RowEncoder, HashesEachValueAsFbHashDoes) {
  auto mapping = resolve_mapping(
      "s", {"email", "phone", "country", "birth_date", "external_id"},
      R"({"EMAIL": "email", "PHONE": "phone", "COUNTRY": "country", "DOB": "birth_date",
          "EXTERN_ID": "external_id"})",
      "");
  RowEncoder encoder(mapping);
  std::vector<std::string> cells;
  // In mapping order: EMAIL, PHONE, DOB, COUNTRY, EXTERN_ID.
  Values row = {" Mary@Example.com ", "020 7946 0958", "1997-02-16", "GB", "crm-7"};
  ASSERT_EQ(encoder.encode(row, cells), std::nullopt);
  ASSERT_EQ(mapping.schema, (std::vector<std::string>{"EMAIL", "PHONE", "DOBY", "DOBM", "DOBD",
                                                      "COUNTRY", "EXTERN_ID"}));
  // Cells hold the normalized values; the payload row their hashes.
  EXPECT_EQ(cells, (std::vector<std::string>{"mary@example.com", "442079460958", "1997", "02",
                                             "16", "gb", "crm-7"}));
  auto sent = payload_row(mapping, cells);
  EXPECT_EQ(sent[0], hashed(Key::Email, "mary@example.com"));
  EXPECT_EQ(sent[1], hashed(Key::Phone, "+442079460958"));  // the row's country applies
  EXPECT_EQ(sent[2], hashed(Key::BirthYear, "1997"));
  EXPECT_EQ(sent[3], hashed(Key::BirthMonth, "02"));
  EXPECT_EQ(sent[4], hashed(Key::BirthDay, "16"));
  EXPECT_EQ(sent[5], hashed(Key::Country, "gb"));
  EXPECT_EQ(sent[6], "crm-7");
}

TEST(ExportMapping, DateOrderPerColumnOrByDefault) {
  std::vector<std::string> columns = {"email", "dob"};
  auto by_default = resolve_mapping("s", columns, "", "", DateOrder::DayFirst);
  EXPECT_EQ(by_default.columns[1].date_order, DateOrder::DayFirst);
  auto own = resolve_mapping("s", columns,
                             R"({"EMAIL": "email", "DOB": {"column": "dob", "date_order": "mdy"}})",
                             "", DateOrder::DayFirst);
  EXPECT_EQ(own.columns[1].date_order, DateOrder::MonthFirst);
  auto dmy = resolve_mapping("s", columns,
                             R"({"EMAIL": "email", "DOB": {"column": "dob", "date_order": "DMY"}})",
                             "");
  RowEncoder encoder(dmy);
  std::vector<std::string> cells;
  ASSERT_EQ(encoder.encode({"mary@example.com", "04/01/1950"}, cells), std::nullopt);
  EXPECT_EQ(cells[1] + cells[2] + cells[3], "19500104");
  RowEncoder month_first(own);
  ASSERT_EQ(month_first.encode({"mary@example.com", "04/01/1950"}, cells), std::nullopt);
  EXPECT_EQ(cells[1] + cells[2] + cells[3], "19500401");
  EXPECT_THROW(resolve_mapping("s", columns,
                               R"({"DOB": {"column": "dob", "date_order": "YMD"}, "EMAIL": "email"})",
                               ""),
               InvalidArgument);
  EXPECT_THROW(resolve_mapping("s", columns,
                               R"({"EMAIL": {"column": "email", "date_order": "DMY"}})", ""),
               InvalidArgument);
  EXPECT_THROW(parse_date_order("dd/mm/yyyy"), InvalidArgument);
}

TEST(ExportMapping, UnhashedKeysAreSentOnlyWhenMappedOnPurpose) {
  auto by_name = resolve_mapping("s", {"email", "external_id", "extern_id", "madid"}, "", "");
  EXPECT_EQ(by_name.schema, (std::vector<std::string>{"EMAIL"}));
  EXPECT_EQ(unhashed_key_names(by_name), "");
  auto mapped = resolve_mapping("s", {"email", "crm_id", "device"},
                                R"({"EMAIL": "email", "EXTERN_ID": "crm_id", "MADID": "device"})",
                                "");
  EXPECT_EQ(unhashed_key_names(mapped), "MADID, EXTERN_ID");
}

TEST(RowEncoder, ARowWithAValueLongerThanAnyIdentifierIsSkipped) {
  auto mapping = resolve_mapping("s", {"email", "first_name"}, "", "");
  RowEncoder encoder(mapping);
  std::vector<std::string> cells;
  EXPECT_EQ(encoder.encode({"mary@example.com", std::string(kMaxValueBytes, 'b')}, cells),
            std::nullopt);
  EXPECT_EQ(encoder.encode({"mary@example.com", std::string(kMaxValueBytes + 1, 'b')}, cells),
            SkipReason::ValueTooLong);
  EXPECT_STREQ(skip_reason_name(SkipReason::ValueTooLong), "value_too_long");
}

TEST(RowEncoder, InvalidValuesAreEmptyCellsAndRowsWithoutIdentifierAreSkipped) {
  auto mapping = resolve_mapping("s", {"email", "phone", "gender"}, "", "");
  RowEncoder encoder(mapping);
  std::vector<std::string> cells;
  EXPECT_EQ(encoder.encode({"not an email", std::nullopt, "f"}, cells), SkipReason::InvalidEmail);
  EXPECT_EQ(encoder.encode({"  ", "n/a", "f"}, cells), SkipReason::InvalidPhone);
  EXPECT_EQ(encoder.encode({"  ", std::nullopt, "f"}, cells), SkipReason::NoIdentifier);
  EXPECT_EQ(encoder.encode({"not an email", "+1 650 555 1212", "unknown"}, cells), std::nullopt);
  EXPECT_EQ(cells[0], "");
  EXPECT_EQ(cells[2], "");
  EXPECT_NE(cells[1], "");
}

TEST(RowEncoder, KeyIdentifierDecidesWhatIsRequired) {
  auto by_email = resolve_mapping("s", {"email", "phone"}, "", "email");
  RowEncoder email_encoder(by_email);
  std::vector<std::string> cells;
  EXPECT_EQ(email_encoder.encode({std::nullopt, "+1 650 555 1212"}, cells), SkipReason::NoEmail);
  EXPECT_EQ(email_encoder.encode({"", "+1 650 555 1212"}, cells), SkipReason::NoEmail);
  EXPECT_EQ(email_encoder.encode({"mary@", "+1 650 555 1212"}, cells), SkipReason::InvalidEmail);
  auto by_phone = resolve_mapping("s", {"email", "phone", "country"}, "", "phone");
  RowEncoder phone_encoder(by_phone);
  EXPECT_EQ(phone_encoder.encode({"mary@example.com", std::nullopt, "ES"}, cells),
            SkipReason::NoPhone);
  EXPECT_EQ(phone_encoder.encode({"mary@example.com", "12", "ES"}, cells), SkipReason::InvalidPhone);
  EXPECT_EQ(phone_encoder.encode({"mary@example.com", "604 123 456", "Atlantis"}, cells),
            SkipReason::UnknownCountry);
  EXPECT_EQ(phone_encoder.encode({"mary@example.com", "604 123 456", "ES"}, cells), std::nullopt);
  EXPECT_EQ(skip_reason_name(SkipReason::UnknownCountry), std::string("unknown_country"));
  auto by_name = resolve_mapping("s", {"first_name", "last_name", "city"}, "", "name_and_address");
  RowEncoder name_encoder(by_name);
  EXPECT_EQ(name_encoder.encode({"Mary", "Smith", std::nullopt}, cells),
            SkipReason::IncompleteNameAndAddress);
  EXPECT_EQ(name_encoder.encode({std::nullopt, " ", "Paris"}, cells),
            SkipReason::NoNameAndAddress);
  EXPECT_EQ(name_encoder.encode({"Mary", "Smith", "Paris"}, cells), std::nullopt);
}

TEST(RowEncoder, PrehashedValuesAreCheckedNotHashedAgain) {
  auto mapping =
      resolve_mapping("s", {"h"}, R"({"EMAIL": {"column": "h", "prehashed": true}})", "");
  RowEncoder encoder(mapping);
  std::vector<std::string> cells;
  std::string digest = hashed(Key::Email, "mary@example.com");
  EXPECT_EQ(encoder.encode({digest}, cells), std::nullopt);
  EXPECT_EQ(cells[0].size(), 32u);  // kept as the digest's bytes, sent as its hex
  EXPECT_EQ(payload_row(mapping, cells)[0], digest);
  EXPECT_EQ(
      encoder.encode({"F1904CF1A9D73A55FA5DE0AC823C4403DED71AFD4C3248D00BDCD0866552BB79"}, cells),
      SkipReason::InvalidEmail);
  EXPECT_EQ(encoder.encode({"mary@example.com"}, cells), SkipReason::InvalidEmail);
  EXPECT_EQ(encoder.rejected_prehashed_values(), 2);
}

TEST(PayloadWriter, BodyIsTheJsonMetaDocuments) {
  auto row = [](std::string_view json) {
    return [json](std::string& body) { body += json; };
  };
  PayloadWriter writer({"EMAIL", "EXTERN_ID"}, 1);  // grows past what it expected
  writer.add_row(row(R"(["aa","crm \"7\"\n"])"));
  writer.add_row(row(R"(["","x"])"));
  EXPECT_EQ(writer.rows(), 2u);
  auto body = nlohmann::json::parse(writer.finish(7302114486112359, 3, true, 25001));
  EXPECT_EQ(body["payload"]["schema"], nlohmann::json({"EMAIL", "EXTERN_ID"}));
  EXPECT_EQ(body["payload"]["is_raw"], true);
  EXPECT_EQ(body["payload"]["data"][0][1], "crm \"7\"\n");
  EXPECT_EQ(body["payload"]["data"][1][0], "");
  EXPECT_EQ(body["session"]["session_id"], 7302114486112359);
  EXPECT_EQ(body["session"]["batch_seq"], 3);
  EXPECT_EQ(body["session"]["last_batch_flag"], true);
  EXPECT_EQ(body["session"]["estimated_num_total"], 25001);
  EXPECT_EQ(writer.rows(), 0u);
  writer.add_row(row(R"(["bb",""])"));
  auto next = nlohmann::json::parse(writer.finish(1, 4, false, 0));
  EXPECT_EQ(next["payload"]["data"].size(), 1u);
}

}  // namespace
}  // namespace connector
