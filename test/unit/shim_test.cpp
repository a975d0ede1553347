// The shim's contract: no exception escapes; each failure is a status with the
// SQLSTATE PostgreSQL will raise, and the next call works normally.

#include <gtest/gtest.h>

#include <string>

#include "connector_shim.h"

namespace {

int find_key(const char* name, ConnectorStatus& status) {
  int key_id = -1;
  EXPECT_EQ(connector_find_key(name, std::char_traits<char>::length(name), &key_id, &status),
            CONNECTOR_VALUE);
  return key_id;
}

TEST(Shim, UnknownKeyBecomesInvalidParameterValue) {
  ConnectorStatus status;
  int key_id = -1;
  ASSERT_EQ(connector_find_key("SSN", 3, &key_id, &status), CONNECTOR_ERROR);
  EXPECT_EQ(status.code, 1);
  EXPECT_STREQ(status.sqlstate, "22023");
  EXPECT_STREQ(status.message, "unknown identifier key \"SSN\"");
  EXPECT_NE(std::string(status.hint).find("EMAIL"), std::string::npos);
}

TEST(Shim, ValueAndNoValue) {
  ConnectorStatus status;
  int email = find_key("email", status);
  const char* out = nullptr;
  size_t out_len = 0;
  ASSERT_EQ(connector_hash(email, "mary@example.com", 16, &out, &out_len, &status),
            CONNECTOR_VALUE);
  EXPECT_EQ(std::string(out, out_len),
            "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79");
  EXPECT_EQ(connector_hash(email, "mary", 4, &out, &out_len, &status), CONNECTOR_NO_VALUE);
  EXPECT_EQ(status.code, 0);
}

TEST(Shim, InjectedAllocationFailureBecomesOutOfMemoryAndTheNextCallWorks) {
  ConnectorStatus status;
  int email = find_key("EMAIL", status);
  const char* out = nullptr;
  size_t out_len = 0;
  connector_inject_fault(1);
  EXPECT_EQ(connector_hash(email, "mary@example.com", 16, &out, &out_len, &status),
            CONNECTOR_ERROR);
  EXPECT_STREQ(status.sqlstate, "53200");
  connector_inject_fault(2);
  EXPECT_EQ(connector_normalize_phone("020 7946 0958", 13, "GB", 2, &out, &out_len, &status),
            CONNECTOR_ERROR);
  EXPECT_STREQ(status.sqlstate, "XX000");
  EXPECT_STREQ(status.message, "internal error in the connector core: injected internal error");
  connector_inject_fault(0);
  EXPECT_EQ(connector_hash(email, "mary@example.com", 16, &out, &out_len, &status),
            CONNECTOR_VALUE);
}

TEST(Shim, OutOfRangeKeyIdIsAnInternalErrorNotACrash) {
  ConnectorStatus status;
  const char* out = nullptr;
  size_t out_len = 0;
  EXPECT_EQ(connector_normalize(999, "x", 1, &out, &out_len, &status), CONNECTOR_ERROR);
  EXPECT_STREQ(status.sqlstate, "XX000");
}

TEST(Shim, LongMessagesAreTruncatedNotOverflowed) {
  ConnectorStatus status;
  std::string long_name(5000, 'K');
  int key_id = -1;
  ASSERT_EQ(connector_find_key(long_name.data(), long_name.size(), &key_id, &status),
            CONNECTOR_ERROR);
  EXPECT_LT(std::string(status.message).size(), sizeof status.message);
}

}  // namespace
