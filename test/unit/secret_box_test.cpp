// Sealed secrets: real AES-256-GCM over the documented version 2 layout (a
// vector computed independently opens), a fresh nonce per seal, a blob that
// names its key by fingerprint, and every way of getting a blob wrong (key,
// context, any flipped bit, truncation, version) refused with its own message
// and without leaking the secret.

#include "secrets/secret_box.hpp"

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

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (char c : bytes) {
    auto byte = static_cast<unsigned char>(c);
    hex += kDigits[byte >> 4];
    hex += kDigits[byte & 0x0F];
  }
  return hex;
}

bool is_lowercase_hex(const std::string& text) {
  return text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

const std::string kToken = "EAAGm0PX4ZCpsBAKZCsecrettokenZDZD";
const std::string kContext = "destination/42/access_token";

// The key, IV, plaintext and ciphertext of NIST GCM test case 16 (AES-256); the
// AAD is version 2 | fingerprint | kContext, and the fingerprint and tag were
// computed with Python's hashlib and cryptography (AESGCM), not with this code.
const std::string kVectorKeyHex =
    "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const std::string kVectorFingerprint = "b3f786ce07dcf87c";
const std::string kVectorNonceHex = "cafebabefacedbaddecaf888";
const std::string kVectorCiphertextHex =
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056"
    "828838c5f61e6393ba7a0abcc9f662";
const std::string kVectorTagHex = "e3df2217b9d282e5d03d46d5b1cf5690";
// The tag of the same encryption with only kContext as AAD: what a format that
// left the header unauthenticated would store.
const std::string kVectorTagWithoutHeaderHex = "ef5727c65521deba4c83b79248976054";
const std::string kVectorPlaintextHex =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449"
    "a6b525b16aedf5aa0de657ba637b39";

SecretKey vector_key() {
  std::string key_bytes = from_hex(kVectorKeyHex);
  unsigned char key_array[SecretKey::size];
  for (std::size_t i = 0; i < SecretKey::size; ++i)
    key_array[i] = static_cast<unsigned char>(key_bytes[i]);
  return SecretKey(key_array);
}

// The exception thrown, or one with an empty message after a test failure.
SecretError open_failure(const SecretKey& key, std::string_view sealed, std::string_view context) {
  try {
    std::string opened = open_secret(key, sealed, context);
    ADD_FAILURE() << "opened a bad blob of " << sealed.size() << " bytes";
  } catch (const SecretError& error) {
    EXPECT_FALSE(error.hint().empty());
    return error;
  }
  return SecretError("");
}

// The message of the SecretError thrown, or "" with a test failure.
std::string open_error(const SecretKey& key, std::string_view sealed, std::string_view context) {
  return open_failure(key, sealed, context).what();
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
    ASSERT_EQ(sealed.size(), 1 + 8 + 12 + plaintext.size() + 16);
    EXPECT_EQ(static_cast<unsigned char>(sealed[0]), 0x02);
    EXPECT_EQ(to_hex(sealed.substr(1, 8)), key_fingerprint(key));
    EXPECT_EQ(open_secret(key, sealed, kContext), plaintext);
  }
  EXPECT_EQ(sealed_secret_overhead, 37u);
}

TEST(SecretBox, OpensAnIndependentlyComputedVector) {
  SecretKey key = vector_key();
  EXPECT_EQ(key_fingerprint(key), kVectorFingerprint);
  std::string blob = "\x02" + from_hex(kVectorFingerprint) + from_hex(kVectorNonceHex) +
                     from_hex(kVectorCiphertextHex) + from_hex(kVectorTagHex);
  EXPECT_EQ(sealed_key_fingerprint(blob), kVectorFingerprint);
  EXPECT_EQ(open_secret(key, blob, kContext), from_hex(kVectorPlaintextHex));
}

TEST(SecretBox, TheVersionAndFingerprintAreAuthenticated) {
  SecretKey key = vector_key();
  std::string blob = "\x02" + from_hex(kVectorFingerprint) + from_hex(kVectorNonceHex) +
                     from_hex(kVectorCiphertextHex) + from_hex(kVectorTagWithoutHeaderHex);
  std::string message = open_error(key, blob, kContext);
  EXPECT_NE(message.find("altered"), std::string::npos) << message;
}

TEST(SecretBox, FingerprintIsDeterministicPerKeyAndDiffersBetweenKeys) {
  // Also computed by the shell command documented in secret_box.hpp.
  EXPECT_EQ(key_fingerprint(key_filled_with(0x11)), "c07a8d03233e9519");
  EXPECT_EQ(key_fingerprint(key_filled_with(0x12)), "06032a1b932a4698");

  SecretKey key = key_filled_with(0x11);
  std::string fingerprint = key_fingerprint(key);
  EXPECT_EQ(fingerprint.size(), 16u);
  EXPECT_TRUE(is_lowercase_hex(fingerprint)) << fingerprint;
  EXPECT_EQ(key_fingerprint(key), fingerprint);
  EXPECT_EQ(key_fingerprint(key_filled_with(0x11)), fingerprint);
  EXPECT_NE(fingerprint, to_hex(std::string(8, '\x11'))) << "not the key's own bytes";

  std::set<std::string> fingerprints;
  for (int i = 0; i < 50; ++i) fingerprints.insert(key_fingerprint(SecretKey::random()));
  EXPECT_EQ(fingerprints.size(), 50u);
}

TEST(SecretBox, SealedKeyFingerprintIsReadWithoutTheKey) {
  SecretKey key = key_filled_with(0x12);
  EXPECT_EQ(sealed_key_fingerprint(seal_secret(key, kToken, kContext)), key_fingerprint(key));
  EXPECT_EQ(sealed_key_fingerprint(seal_secret(key, "", "")), key_fingerprint(key));

  std::string sealed = seal_secret(key, "", kContext);
  for (std::size_t length = 0; length < sealed.size(); ++length) {
    try {
      sealed_key_fingerprint(std::string_view(sealed).substr(0, length));
      ADD_FAILURE() << "read the fingerprint of a blob of " << length << " bytes";
    } catch (const SecretError& error) {
      EXPECT_NE(std::string(error.what()).find("truncated"), std::string::npos) << error.what();
    }
  }
  std::string other_version = sealed;
  other_version[0] = '\x01';
  try {
    sealed_key_fingerprint(other_version);
    ADD_FAILURE() << "read the fingerprint of a version 1 blob";
  } catch (const SecretError& error) {
    EXPECT_NE(std::string(error.what()).find("unknown format version"), std::string::npos)
        << error.what();
  }
}

TEST(SecretBox, TwoSealsOfTheSameSecretDiffer) {
  SecretKey key = key_filled_with(0x22);
  std::set<std::string> blobs;
  std::set<std::string> nonces;
  for (int i = 0; i < 100; ++i) {
    std::string sealed = seal_secret(key, kToken, kContext);
    EXPECT_EQ(open_secret(key, sealed, kContext), kToken);
    nonces.insert(sealed.substr(9, 12));
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

TEST(SecretBox, AnotherKeyCannotOpenAndBothFingerprintsAreNamed) {
  SecretKey key = key_filled_with(0x44);
  std::string sealed = seal_secret(key, kToken, kContext);
  SecretKey other = key_filled_with(0x45);
  SecretError error = open_failure(other, sealed, kContext);
  std::string message = error.what();
  EXPECT_NE(message.find("sealed with key " + key_fingerprint(key) +
                         ", but the key file holds key " + key_fingerprint(other)),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("altered"), std::string::npos) << message;
  EXPECT_EQ(message.find(kToken), std::string::npos);
  EXPECT_NE(error.hint().find("restore the key file with fingerprint " + key_fingerprint(key)),
            std::string::npos)
      << error.hint();
  EXPECT_NE(error.hint().find("fb_alter_destination"), std::string::npos) << error.hint();

  SecretKey random = SecretKey::random();
  EXPECT_NE(open_error(random, sealed, kContext).find(key_fingerprint(random)), std::string::npos);
}

TEST(SecretBox, AnotherContextCannotOpen) {
  SecretKey key = key_filled_with(0x55);
  std::string sealed = seal_secret(key, kToken, kContext);
  for (const char* context :
       {"destination/43/access_token", "destination/42/app_secret", "", "destination/42/",
        "destination/42/access_token ", "Destination/42/access_token"}) {
    std::string message = open_error(key, sealed, context);
    EXPECT_NE(message.find("altered or moved to another field"), std::string::npos) << message;
  }

  std::string without_context = seal_secret(key, kToken, "");
  EXPECT_EQ(open_secret(key, without_context, ""), kToken);
  open_error(key, without_context, kContext);
}

TEST(SecretBox, EveryFlippedBitIsDetectedWithTheMessageForWhatChanged) {
  SecretKey key = key_filled_with(0x66);
  std::string sealed = seal_secret(key, "short token", kContext);
  for (std::size_t byte = 0; byte < sealed.size(); ++byte) {
    const char* expected = byte == 0   ? "unknown format version"
                           : byte <= 8 ? "but the key file holds key"
                                       : "altered or moved to another field";
    for (int bit = 0; bit < 8; ++bit) {
      std::string altered = sealed;
      altered[byte] = static_cast<char>(altered[byte] ^ (1 << bit));
      std::string message = open_error(key, altered, kContext);
      EXPECT_NE(message.find(expected), std::string::npos) << "byte " << byte << ": " << message;
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
  for (int version : {0x00, 0x01, 0x03, 0x7F, 0xFF}) {
    std::string altered = sealed;
    altered[0] = static_cast<char>(version);
    std::string message = open_error(key, altered, kContext);
    EXPECT_NE(message.find("unknown format version"), std::string::npos) << message;
  }
}

TEST(SecretBox, VersionOneBlobIsRefusedAsAnUnknownVersion) {
  // Version 1 was version | nonce | ciphertext | tag with only the context as
  // AAD; this is NIST test case 16 in that layout, which version 1 opened.
  SecretKey key = vector_key();
  std::string version_one = "\x01" + from_hex(kVectorNonceHex) + from_hex(kVectorCiphertextHex) +
                            from_hex("76fc6ece0f4e1768cddf8853bb2d551b");
  std::string aad = from_hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  std::string message = open_error(key, version_one, aad);
  EXPECT_NE(message.find("unknown format version (1)"), std::string::npos) << message;
  // Shorter than a version 2 blob, yet called what it is, not truncated.
  std::string short_version_one = "\x01" + std::string(12, 'n') + "token" + std::string(16, 't');
  ASSERT_LT(short_version_one.size(), sealed_secret_overhead);
  message = open_error(key, short_version_one, kContext);
  EXPECT_NE(message.find("unknown format version (1)"), std::string::npos) << message;
  EXPECT_THROW(sealed_key_fingerprint(short_version_one), SecretError);
}

TEST(SecretBox, MessageNamesTheContextAndNotTheSecret) {
  SecretKey key = key_filled_with(0x99);
  std::string sealed = seal_secret(key, kToken, kContext);
  for (const SecretKey& opener : {key_filled_with(0x9A), key_filled_with(0x99)}) {
    std::string message = open_error(opener, sealed, "destination/7/app_secret");
    EXPECT_NE(message.find("destination/7/app_secret"), std::string::npos) << message;
    EXPECT_EQ(message.find(kToken), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace connector
