// Members (what spools and the mirror ledger keep of a row) and source
// records (what a mirror run sorts): compact, exact round trips, and a digest
// that changes whenever what the row would make may change.

#include "export/members.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "export/export_rows.hpp"
#include "test_support.hpp"

namespace connector {
namespace {

using Values = std::vector<std::optional<std::string_view>>;

TEST(MemberFormat, AMemberIsTheNormalizedValuesAndBecomesThePayloadRow) {
  auto mapping = resolve_mapping("s", {"email", "first_name", "madid", "h"},
                                 R"({"EMAIL": "email", "FN": "first_name", "MADID": "madid",
                                     "LN": {"column": "h", "prehashed": true}})",
                                 "");
  RowEncoder encoder(mapping);
  MemberFormat format(mapping);
  std::string digest = *testing::hashed("LN", "smith");
  std::vector<std::string> cells;
  // In mapping order: EMAIL, FN, LN, MADID.
  ASSERT_EQ(encoder.encode({"Mary@Example.com", std::nullopt, digest, "AB-12"}, cells),
            std::nullopt);
  std::string member, row;
  format.encode(cells, member);
  // A length byte per cell, the normalized e-mail, nothing for FN, the 32
  // bytes of the prehashed digest, the advertiser id as is.
  EXPECT_EQ(member.size(), 1 + 16 + 1 + 1 + 32 + 1 + 5u);
  format.append_row_json(member, row);
  EXPECT_EQ(nlohmann::json::parse(row),
            nlohmann::json({*testing::hashed("EMAIL", "mary@example.com"), "", digest, "ab-12"}))
      << row;
  EXPECT_EQ(format.description(),
            R"({"schema":["EMAIL","FN","LN","MADID"],"forms":"hhdp"})");
}

TEST(MemberFormat, AMalformedMemberIsAnErrorNotAWrongRow) {
  auto mapping = resolve_mapping("s", {"email", "phone"}, "", "");
  MemberFormat format(mapping);
  std::string member, row;
  format.encode({"mary@example.com", "16505551212"}, member);
  for (std::size_t cut = 0; cut < member.size(); ++cut)
    EXPECT_THROW(format.append_row_json(member.substr(0, cut), row), InvalidArgument) << cut;
  EXPECT_THROW(format.append_row_json(member + "x", row), InvalidArgument);
  EXPECT_THROW(format.append_row_json(std::string("\xff\xff\xff\xff\xff\xff", 6), row),
               InvalidArgument);
  auto prehashed =
      resolve_mapping("s", {"h"}, R"({"EMAIL": {"column": "h", "prehashed": true}})", "");
  MemberFormat digest_format(prehashed);
  digest_format.encode({"short"}, member);
  EXPECT_THROW(digest_format.append_row_json(member, row), InvalidArgument);
}

TEST(MemberFormat, LongValuesKeepTheirLength) {
  auto mapping = resolve_mapping("s", {"email", "extern_id"},
                                 R"({"EMAIL": "email", "EXTERN_ID": "extern_id"})", "");
  MemberFormat format(mapping);
  std::string value(300, 'x'), member, row;
  format.encode({"a@b.co", value}, member);
  EXPECT_EQ(member.size(), 1 + 6 + 2 + 300u);  // a two-byte length for the long one
  format.append_row_json(member, row);
  EXPECT_EQ(nlohmann::json::parse(row)[1], value);
}

TEST(SourceRecords, ValuesComeBackExactlyAndNullIsNotEmpty) {
  auto mapping = resolve_mapping("s", {"email", "phone", "first_name"}, "", "");
  SourceRecords records(mapping);
  std::string record;
  std::string long_value(200, 'n');
  records.pack({"mary@example.com", std::nullopt, long_value}, record);
  Values values;
  records.unpack(record, values);
  ASSERT_EQ(values.size(), 3u);
  EXPECT_EQ(values[0], "mary@example.com");
  EXPECT_EQ(values[1], std::nullopt);
  EXPECT_EQ(values[2], long_value);

  std::string with_null, with_empty;
  records.pack({"a@b.c", std::nullopt, std::nullopt}, with_null);
  records.pack({"a@b.c", "", std::nullopt}, with_empty);
  EXPECT_NE(with_null.substr(0, kSourceDigestLength), with_empty.substr(0, kSourceDigestLength));
  records.unpack(with_empty, values);
  EXPECT_EQ(values[1], "");
}

TEST(SourceRecords, TheDigestChangesWithWhatTheRowWouldMake) {
  auto digest_of = [](const ExportMapping& mapping, const Values& values) {
    SourceRecords records(mapping);
    std::string record;
    records.pack(values, record);
    return record.substr(0, kSourceDigestLength);
  };
  std::vector<std::string> columns = {"email", "phone"};
  auto any = resolve_mapping("s", columns, "", "");
  Values row = {"mary@example.com", "+1 650 555 1212"};
  EXPECT_EQ(digest_of(any, row), digest_of(any, row));
  EXPECT_NE(digest_of(any, row), digest_of(any, {"mary@example.com", "+1 650 555 1213"}));
  // Values shifted between columns are another row.
  EXPECT_NE(digest_of(any, {"ab", "c"}), digest_of(any, {"a", "bc"}));
  // Another key identifier, or a column declared prehashed, may skip or send differently.
  EXPECT_NE(digest_of(any, row), digest_of(resolve_mapping("s", columns, "", "email"), row));
  EXPECT_NE(digest_of(resolve_mapping("s", {"e"}, R"({"EMAIL": "e"})", ""), {"x"}),
            digest_of(resolve_mapping("s", {"e"}, R"({"EMAIL": {"column": "e", "prehashed": true}})",
                                      ""),
                      {"x"}));
  // The order dates are read in changes what a date column makes; nothing else.
  std::vector<std::string> with_date = {"email", "dob"};
  Values dated = {"mary@example.com", "04/01/1950"};
  EXPECT_NE(digest_of(resolve_mapping("s", with_date, "", ""), dated),
            digest_of(resolve_mapping("s", with_date, "", "", DateOrder::DayFirst), dated));
  EXPECT_EQ(digest_of(any, row), digest_of(resolve_mapping("s", columns, "", "", DateOrder::DayFirst), row));
}

TEST(SourceRecords, AMalformedRecordIsAnError) {
  auto mapping = resolve_mapping("s", {"email", "phone"}, "", "");
  SourceRecords records(mapping);
  std::string record;
  records.pack({"mary@example.com", "+1 650 555 1212"}, record);
  Values values;
  for (std::size_t cut = 0; cut < record.size(); ++cut)
    EXPECT_THROW(records.unpack(record.substr(0, cut), values), InvalidArgument) << cut;
  EXPECT_THROW(records.unpack(record + "x", values), InvalidArgument);
}

}  // namespace
}  // namespace connector
