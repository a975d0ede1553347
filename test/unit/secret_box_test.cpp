// Sealed secrets: real AES-256-GCM (a NIST vector opens), a fresh nonce per
// seal, and every way of getting a blob wrong (key, context, any flipped bit,
// truncation, version) refused without leaking the secret.

#include "secret_box.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "errors.hpp"

namespace connector {
namespace {

SecretKey key_filled_with(unsigned char value) {
  unsigned char bytes[SecretKey::size];
  for (unsigned char& byte : bytes) byte = value;
  return SecretKey(bytes);
}

std::string from_hex(const std::string& hex) {
  std::string bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return bytes;
}

const std::string kToken = "EAAGm0PX4ZCpsBAKZCsecrettokenZDZD";
const std::string kContext = "destination/42/access_token";

// The message of the SecretError thrown, or "" with a test failure.
std::string open_error(const SecretKey& key, std::string_view sealed, std::string_view context) {
  try {
    std::string opened = open_secret(key, sealed, context);
    ADD_FAILURE() << "opened a bad blob of " << sealed.size() << " bytes";
  } catch (const SecretError& error) {
    EXPECT_FALSE(error.hint().empty());
    return error.what();
  }
  return {};
}

TEST(SecretBox, RoundTripsAnyPlaintextWithTheDocumentedLayout) {
  SecretKey key = key_filled_with(0x11);
  std::vector<std::string> plaintexts = {"",
                                         "x",
                                         std::string(15, 'a'),
                                         std::string(16, 'b'),
                                         std::string(17, 'c'),
                                         std::string("nul\0inside\xff", 11),
                                         std::string(5000, 'z'),
                                         kToken};
  for (const std::string& plaintext : plaintexts) {
    std::string sealed = seal_secret(key, plaintext, kContext);
    ASSERT_EQ(sealed.size(), 1 + 12 + plaintext.size() + 16);
    EXPECT_EQ(static_cast<unsigned char>(sealed[0]), 0x01);
    EXPECT_EQ(open_secret(key, sealed, kContext), plaintext);
  }
  EXPECT_EQ(sealed_secret_overhead, 29u);
}

TEST(SecretBox, OpensTheNistGcmTestVector) {
  // NIST GCM specification, test case 16 (AES-256, 96-bit IV, AAD). The blob is
  // version | IV | ciphertext | tag and the AAD is the context.
  std::string key_bytes =
      from_hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  unsigned char key_array[SecretKey::size];
  for (std::size_t i = 0; i < SecretKey::size; ++i)
    key_array[i] = static_cast<unsigned char>(key_bytes[i]);
  SecretKey key(key_array);
  std::string blob = "\x01" + from_hex("cafebabefacedbaddecaf888") +
                     from_hex(
                         "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48"
                         "590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662") +
                     from_hex("76fc6ece0f4e1768cddf8853bb2d551b");
  std::string aad = from_hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  EXPECT_EQ(open_secret(key, blob, aad),
            from_hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c9595"
                     "6809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"));
}

TEST(SecretBox, TwoSealsOfTheSameSecretDiffer) {
  SecretKey key = key_filled_with(0x22);
  std::set<std::string> blobs;
  std::set<std::string> nonces;
  for (int i = 0; i < 100; ++i) {
    std::string sealed = seal_secret(key, kToken, kContext);
    EXPECT_EQ(open_secret(key, sealed, kContext), kToken);
    nonces.insert(sealed.substr(1, 12));
    blobs.insert(std::move(sealed));
  }
  EXPECT_EQ(blobs.size(), 100u);
  EXPECT_EQ(nonces.size(), 100u);
}

TEST(SecretBox, BlobDoesNotContainThePlaintext) {
  SecretKey key = key_filled_with(0x33);
  std::string sealed = seal_secret(key, kToken, kContext);
  EXPECT_EQ(sealed.find(kToken.substr(0, 8)), std::string::npos);
  EXPECT_EQ(sealed.find(kContext), std::string::npos) << "the context is not stored";
}

TEST(SecretBox, AnotherKeyCannotOpen) {
  SecretKey key = key_filled_with(0x44);
  std::string sealed = seal_secret(key, kToken, kContext);
  SecretKey other = key_filled_with(0x45);
  std::string message = open_error(other, sealed, kContext);
  EXPECT_NE(message.find("cannot be decrypted"), std::string::npos) << message;
  EXPECT_NE(message.find("wrong key file or altered data"), std::string::npos) << message;
  EXPECT_EQ(message.find(kToken), std::string::npos);
  open_error(SecretKey::random(), sealed, kContext);
}

TEST(SecretBox, AnotherContextCannotOpen) {
  SecretKey key = key_filled_with(0x55);
  std::string sealed = seal_secret(key, kToken, kContext);
  for (const char* context :
       {"destination/43/access_token", "destination/42/app_secret", "", "destination/42/",
        "destination/42/access_token ", "Destination/42/access_token"})
    open_error(key, sealed, context);

  std::string without_context = seal_secret(key, kToken, "");
  EXPECT_EQ(open_secret(key, without_context, ""), kToken);
  open_error(key, without_context, kContext);
}

TEST(SecretBox, EveryFlippedBitIsDetected) {
  SecretKey key = key_filled_with(0x66);
  std::string sealed = seal_secret(key, "short token", kContext);
  for (std::size_t byte = 0; byte < sealed.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string altered = sealed;
      altered[byte] = static_cast<char>(altered[byte] ^ (1 << bit));
      std::string message = open_error(key, altered, kContext);
      EXPECT_EQ(message.find("short token"), std::string::npos);
    }
  }
  EXPECT_EQ(open_secret(key, sealed, kContext), "short token");
}

TEST(SecretBox, TruncatedOrExtendedBlobsAreRefused) {
  SecretKey key = key_filled_with(0x77);
  std::string sealed = seal_secret(key, kToken, kContext);
  for (std::size_t length = 0; length < sealed.size(); ++length) {
    std::string message = open_error(key, std::string_view(sealed).substr(0, length), kContext);
    if (length < sealed_secret_overhead) {
      EXPECT_NE(message.find("truncated"), std::string::npos) << length << ": " << message;
    }
  }
  open_error(key, sealed + '\0', kContext);
  open_error(key, sealed + sealed, kContext);

  std::string empty = seal_secret(key, "", kContext);
  ASSERT_EQ(empty.size(), sealed_secret_overhead);
  for (std::size_t length = 0; length < empty.size(); ++length)
    open_error(key, std::string_view(empty).substr(0, length), kContext);
}

TEST(SecretBox, UnknownVersionIsRefused) {
  SecretKey key = key_filled_with(0x88);
  std::string sealed = seal_secret(key, kToken, kContext);
  for (int version : {0x00, 0x02, 0x7F, 0xFF}) {
    std::string altered = sealed;
    altered[0] = static_cast<char>(version);
    std::string message = open_error(key, altered, kContext);
    EXPECT_NE(message.find("unknown format version"), std::string::npos) << message;
  }
}

TEST(SecretBox, MessageNamesTheContextAndNotTheSecret) {
  SecretKey key = key_filled_with(0x99);
  std::string sealed = seal_secret(key, kToken, kContext);
  std::string message = open_error(key_filled_with(0x9A), sealed, kContext);
  EXPECT_NE(message.find(kContext), std::string::npos) << message;
  EXPECT_EQ(message.find(kToken), std::string::npos) << message;
}

}  // namespace
}  // namespace connector
