// appsecret_proof against the four vectors of docs/graph-api.md section 6.2 and
// RFC 4231, so both forms match what Graph computes.

#include "graph/appsecret_proof.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace connector {
namespace {

TEST(AppsecretProof, ClassicFormMatchesTheReferenceVectors) {
  EXPECT_EQ(appsecret_proof("dummySecret", "ABC"),
            "b65114480019ded6a613dfeb8dcc8b3411598ba1405c65c89dc0c360c72a4732");
  EXPECT_EQ(appsecret_proof("appsecret-123", "access-token-234"),
            "cdfcbc87edc90f8123cd3797a0d6f6f7eedf63d97038a15d1693d297f653d7f2");
}

TEST(AppsecretProof, TimeStampedFormMatchesTheReferenceVectors) {
  EXPECT_EQ(appsecret_proof("dummySecret", "ABC", 1697328000),
            "d103874f3b5f01f57c4f84edfb96ac94055da8f83c2b45e6f26dafca9188ff4d");
  EXPECT_EQ(appsecret_proof("appsecret-123", "access-token-234", 1700000000),
            "24576cd34ef4671d43d4876e233b5fca8c51165f9a6e5187c1cb53e2e365d6d0");
}

TEST(AppsecretProof, IsHmacSha256PerRfc4231) {
  // RFC 4231 test case 2, and the empty key and message.
  EXPECT_EQ(appsecret_proof("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(appsecret_proof("", ""),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(AppsecretProof, TimeStampedMessageIsTokenBarDecimalSeconds) {
  EXPECT_EQ(appsecret_proof("s", "token", 0), appsecret_proof("s", "token|0"));
  EXPECT_EQ(appsecret_proof("s", "token", 1700000000), appsecret_proof("s", "token|1700000000"));
  EXPECT_EQ(appsecret_proof("s", "token", INT64_MAX),
            appsecret_proof("s", "token|9223372036854775807"));
  EXPECT_NE(appsecret_proof("s", "token", 1700000000), appsecret_proof("s", "token", 1700000001));
  EXPECT_NE(appsecret_proof("s", "token", 1700000000), appsecret_proof("s", "token"));
}

TEST(AppsecretProof, KeyAndMessageAreNotInterchangeable) {
  EXPECT_NE(appsecret_proof("secret", "token"), appsecret_proof("token", "secret"));
  EXPECT_NE(appsecret_proof("secret", "token"), appsecret_proof("secret2", "token"));
  std::string long_secret(200, 'k');  // longer than a SHA-256 block: hashed first
  EXPECT_EQ(appsecret_proof(long_secret, "token").size(), 64u);
  EXPECT_NE(appsecret_proof(long_secret, "token"), appsecret_proof(std::string(199, 'k'), "token"));
}

}  // namespace
}  // namespace connector
