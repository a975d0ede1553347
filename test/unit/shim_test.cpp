// The shim's contract: no exception escapes; each failure is a status with the
// SQLSTATE PostgreSQL will raise, and the next call works normally.

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "connector_shim.h"
#include "secrets/key_file.hpp"
#include "secrets/secret_box.hpp"

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

// Secrets through the shim, as the destination functions use them: which key
// file problem it is, said in F0000 errors that name the secret and the keys
// involved, and never a key file created unless the caller allows it.
class ShimSecrets : public ::testing::Test {
 protected:
  static constexpr const char* kContext = "destination/42/access_token";
  static constexpr const char* kDescription = "the access token of destination \"meta_main\"";
  static constexpr const char* kPrefix =
      "cannot decrypt the access token of destination \"meta_main\": ";
  const std::string token_ = "EAAGm0PX4ZCpsBAKZCshimsecretZDZD";

  void SetUp() override {
    char pattern[] = "/tmp/connector-shim-key-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    directory_ = pattern;
    key_path_ = directory_ + "/connector.key";
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  ConnectorResult seal(bool create_key_if_missing, std::string& sealed) {
    const char* out = nullptr;
    size_t out_len = 0;
    ConnectorResult result =
        connector_seal_secret(key_path_.c_str(), create_key_if_missing, token_.data(),
                              token_.size(), kContext, &out, &out_len, &status_);
    if (result == CONNECTOR_VALUE) sealed.assign(out, out_len);
    return result;
  }

  ConnectorResult open(const std::string& sealed, const char* context, std::string& opened) {
    const char* out = nullptr;
    size_t out_len = 0;
    ConnectorResult result = connector_open_secret(key_path_.c_str(), sealed.data(), sealed.size(),
                                                   context, kDescription, &out, &out_len, &status_);
    if (result == CONNECTOR_VALUE) {
      opened.assign(out, out_len);
      connector_forget_secret();
    }
    return result;
  }

  // The message of a failed open, checked for what every such failure shares.
  std::string open_failure(const std::string& sealed, const char* context = kContext) {
    std::string opened;
    EXPECT_EQ(open(sealed, context, opened), CONNECTOR_ERROR);
    EXPECT_EQ(opened, "");
    EXPECT_STREQ(status_.sqlstate, "F0000");
    std::string message = status_.message;
    EXPECT_EQ(message.rfind(kPrefix, 0), 0u) << message;
    EXPECT_FALSE(std::string(status_.hint).empty());
    expect_no_token();
    return message;
  }

  void expect_no_token() const {
    for (const char* text : {status_.message, status_.hint, status_.detail})
      EXPECT_EQ(std::string(text).find(token_), std::string::npos) << text;
  }

  std::string fingerprint_of_key_file() {
    return connector::key_fingerprint(connector::load_or_create_key(key_path_, false));
  }

  std::string directory_;
  std::string key_path_;
  ConnectorStatus status_{};
};

TEST_F(ShimSecrets, SealWithoutCreatingOnAMissingKeyFileFailsAndCreatesNoFile) {
  std::string sealed;
  ASSERT_EQ(seal(false, sealed), CONNECTOR_ERROR);
  EXPECT_STREQ(status_.sqlstate, "F0000");
  std::string message = status_.message;
  std::string hint = status_.hint;
  EXPECT_NE(message.find("\"" + key_path_ + "\" does not exist"), std::string::npos) << message;
  EXPECT_NE(message.find("secrets sealed with another key are stored"), std::string::npos)
      << message;
  EXPECT_NE(message.find("no new key is created automatically"), std::string::npos) << message;
  EXPECT_NE(hint.find("restore the key file"), std::string::npos) << hint;
  EXPECT_NE(hint.find("openssl rand -hex 32 > " + key_path_), std::string::npos) << hint;
  EXPECT_NE(hint.find("fb_alter_destination"), std::string::npos) << hint;
  expect_no_token();
  EXPECT_TRUE(std::filesystem::is_empty(directory_)) << "neither a key file nor a temporary";
}

TEST_F(ShimSecrets, SealCreatingAMissingKeyFileMakesA0600FileWhoseKeySealedIt) {
  std::string sealed;
  ASSERT_EQ(seal(true, sealed), CONNECTOR_VALUE) << status_.message;
  EXPECT_EQ(status_.code, 0);
  struct stat file;
  ASSERT_EQ(::stat(key_path_.c_str(), &file), 0);
  EXPECT_TRUE(S_ISREG(file.st_mode));
  EXPECT_EQ(file.st_mode & 07777, 0600u);
  ASSERT_GE(sealed.size(), connector::sealed_secret_overhead);
  EXPECT_EQ(static_cast<unsigned char>(sealed[0]), 0x02);
  EXPECT_EQ(connector::sealed_key_fingerprint(sealed), fingerprint_of_key_file());

  std::string opened;
  ASSERT_EQ(open(sealed, kContext, opened), CONNECTOR_VALUE) << status_.message;
  EXPECT_EQ(opened, token_);

  // The file now exists: sealing without permission to create uses it.
  std::string again;
  ASSERT_EQ(seal(false, again), CONNECTOR_VALUE) << status_.message;
  EXPECT_EQ(connector::sealed_key_fingerprint(again), connector::sealed_key_fingerprint(sealed));
}

TEST_F(ShimSecrets, OpenWithAMissingKeyFileNamesTheFingerprintOfTheSealingKey) {
  std::string sealed;
  ASSERT_EQ(seal(true, sealed), CONNECTOR_VALUE) << status_.message;
  std::string fingerprint = fingerprint_of_key_file();
  ASSERT_TRUE(std::filesystem::remove(key_path_));

  std::string message = open_failure(sealed);
  EXPECT_NE(message.find("\"" + key_path_ + "\" does not exist"), std::string::npos) << message;
  EXPECT_NE(message.find("sealed with key " + fingerprint), std::string::npos) << message;
  std::string hint = status_.hint;
  EXPECT_NE(hint.find("restore the key file with fingerprint " + fingerprint), std::string::npos)
      << hint;
  EXPECT_NE(hint.find("connector.key_file"), std::string::npos) << hint;
  EXPECT_NE(hint.find("fb_alter_destination"), std::string::npos) << hint;
  EXPECT_FALSE(std::filesystem::exists(key_path_)) << "opening never creates a key";
}

TEST_F(ShimSecrets, OpenWithAnotherKeyFileNamesBothFingerprints) {
  std::string sealed;
  ASSERT_EQ(seal(true, sealed), CONNECTOR_VALUE) << status_.message;
  std::string sealing = fingerprint_of_key_file();
  ASSERT_TRUE(std::filesystem::remove(key_path_));
  {
    std::ofstream replacement(key_path_);
    replacement << std::string(64, 'a') << '\n';
  }
  ASSERT_EQ(::chmod(key_path_.c_str(), 0600), 0);
  std::string holding = fingerprint_of_key_file();
  ASSERT_NE(holding, sealing);

  std::string message = open_failure(sealed);
  EXPECT_NE(message.find("sealed with key " + sealing + ", but the key file holds key " + holding),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("altered"), std::string::npos) << message;
  EXPECT_NE(std::string(status_.hint).find("restore the key file with fingerprint " + sealing),
            std::string::npos)
      << status_.hint;
}

TEST_F(ShimSecrets, OpenOfAnAlteredOrMovedValueSaysSo) {
  std::string sealed;
  ASSERT_EQ(seal(true, sealed), CONNECTOR_VALUE) << status_.message;
  std::string altered = sealed;
  altered[connector::sealed_secret_overhead - 16] ^= 0x01;  // the first ciphertext byte
  std::string message = open_failure(altered);
  EXPECT_NE(message.find("altered or moved to another field"), std::string::npos) << message;

  message = open_failure(sealed, "destination/43/access_token");
  EXPECT_NE(message.find("altered or moved to another field"), std::string::npos) << message;
}

TEST_F(ShimSecrets, OpenOfAVersionOneValueIsRefusedWithOrWithoutTheKeyFile) {
  std::string sealed;
  ASSERT_EQ(seal(true, sealed), CONNECTOR_VALUE) << status_.message;
  std::string version_one = sealed;
  version_one[0] = '\x01';
  std::string message = open_failure(version_one);
  EXPECT_NE(message.find("unknown format version"), std::string::npos) << message;

  ASSERT_TRUE(std::filesystem::remove(key_path_));
  message = open_failure(version_one);
  EXPECT_NE(message.find("unknown format version"), std::string::npos) << message;
  EXPECT_FALSE(std::filesystem::exists(key_path_));
}

}  // namespace
