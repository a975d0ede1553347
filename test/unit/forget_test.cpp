// fb_forget's core: which identifiers name a person, the removal body, and
// finding the person's members in a ledger of any member format.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "export/export_mapping.hpp"
#include "export/export_rows.hpp"
#include "export/forget.hpp"
#include "export/members.hpp"
#include "identifiers/sha256_hex.hpp"

namespace connector {
namespace {

using Values = std::vector<std::optional<std::string_view>>;

// `values` in the mapping's (payload) order.
std::string member_of(const ExportMapping& mapping, const Values& values) {
  RowEncoder encoder(mapping);
  MemberFormat format(mapping);
  std::vector<std::string> cells;
  EXPECT_FALSE(encoder.encode(values, cells).has_value());
  std::string member;
  format.encode(cells, member);
  return member;
}

std::string sha256_hex_of(std::string_view text) {
  char hex[sha256_hex_length];
  sha256_hex(text, hex);
  return std::string(hex, sha256_hex_length);
}

TEST(Forget, OnlyAnIdentifierThatNamesAPersonAlone) {
  EXPECT_EQ(forgotten_identifier("email", " Mary@Example.com ").normalized, "mary@example.com");
  EXPECT_EQ(forgotten_identifier("PHONE", "+1 (650) 555-1234").normalized, "16505551234");
  EXPECT_THROW(forgotten_identifier("FN", "Mary"), InvalidArgument);
  EXPECT_THROW(forgotten_identifier("EMAIL", "not an address"), InvalidArgument);
  EXPECT_THROW(forgotten_identifier("SSN", "1"), InvalidArgument);
}

TEST(Forget, TheRemovalBodyHoldsOneHashedRow) {
  auto body = nlohmann::json::parse(forget_body(forgotten_identifier("EMAIL", "mary@example.com"), 7));
  EXPECT_EQ(body["payload"]["schema"], nlohmann::json::parse(R"(["EMAIL"])"));
  EXPECT_EQ(body["payload"]["data"][0][0], sha256_hex_of("mary@example.com"));
  EXPECT_EQ(body["session"]["session_id"], 7);
  EXPECT_EQ(body["session"]["last_batch_flag"], true);
  // MADID and EXTERN_ID are sent as they are stored.
  auto madid = nlohmann::json::parse(forget_body(forgotten_identifier("MADID", "AbC-1"), 9));
  EXPECT_EQ(madid["payload"]["data"][0][0], "abc-1");
}

TEST(Forget, FindsThePersonsMembersInAnyMemberFormat) {
  auto mapping = resolve_mapping("s", {"phone", "email"}, "", "");
  MemberFormat format(mapping);
  ForgetMatcher matcher(format.description(), forgotten_identifier("EMAIL", "Mary@example.com"));
  ASSERT_TRUE(matcher.applies());
  EXPECT_TRUE(matcher.matches(member_of(mapping, Values{"mary@example.com", "+16505551234"})));
  EXPECT_FALSE(matcher.matches(member_of(mapping, Values{"ann@example.com", "+16505551234"})));
  EXPECT_FALSE(matcher.matches(""));  // a tombstone already
  // A prehashed e-mail column holds the digest.
  std::string digest = sha256_hex_of("mary@example.com");
  auto prehashed = resolve_mapping("s", {"email_sha"}, R"({"EMAIL": {"column": "email_sha", "prehashed": true}})", "");
  ForgetMatcher digest_matcher(MemberFormat(prehashed).description(),
                               forgotten_identifier("EMAIL", "mary@example.com"));
  EXPECT_TRUE(digest_matcher.matches(member_of(prehashed, Values{digest})));
  // A ledger without the key has nothing of the person.
  auto phones = resolve_mapping("s", {"phone"}, "", "");
  EXPECT_FALSE(ForgetMatcher(MemberFormat(phones).description(),
                             forgotten_identifier("EMAIL", "mary@example.com")).applies());
  EXPECT_THROW(matcher.matches("\x05" "ab"), InvalidArgument);
}

TEST(Forget, TheMembersOfALedgerAreRemovedAsTheyWereSent) {
  auto mapping = resolve_mapping("s", {"email", "phone"}, "", "");
  MemberFormat format(mapping);
  std::string member = member_of(mapping, Values{"mary@example.com", "+16505551234"});
  auto body = nlohmann::json::parse(forget_members_body(format.description(), {member}, 11));
  std::string row;
  format.append_row_json(member, row);
  EXPECT_EQ(body["payload"]["schema"], nlohmann::json::parse(R"(["EMAIL", "PHONE"])"));
  EXPECT_EQ(body["payload"]["data"][0], nlohmann::json::parse(row));
  EXPECT_EQ(body["payload"]["data"][0][0], sha256_hex_of("mary@example.com"));
  EXPECT_THROW(forget_members_body(R"({"schema": ["EMAIL"], "forms": "x"})", {member}, 1), InvalidArgument);
  EXPECT_THROW(MemberFormat::from_description("[]"), InvalidArgument);
}

}  // namespace
}  // namespace connector
