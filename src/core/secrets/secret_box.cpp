// AES-256-GCM through EVP. A fresh random 96-bit nonce per seal is safe for far
// more seals than a destination table will ever see (the GCM bound is about
// 2^32 per key). The version byte lets a later format or key rotation coexist
// with blobs already stored. The version and the fingerprint are authenticated
// ahead of the context, so a blob that opens carries the header it was sealed
// with: nobody can relabel it as another version or as another key's. The
// fingerprint is compared before decrypting, because a tag mismatch alone
// cannot tell a wrong key from altered data. GCM releases plaintext before it
// checks the tag, so a failed open wipes what it decrypted before throwing.

#include "secrets/secret_box.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <climits>
#include <memory>
#include <new>
#include <string>

#include "errors.hpp"

namespace connector {
namespace {

struct CipherContextDeleter {
  void operator()(EVP_CIPHER_CTX* context) const noexcept { EVP_CIPHER_CTX_free(context); }
};
using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, CipherContextDeleter>;

struct DigestContextDeleter {
  void operator()(EVP_MD_CTX* context) const noexcept { EVP_MD_CTX_free(context); }
};
using DigestContext = std::unique_ptr<EVP_MD_CTX, DigestContextDeleter>;

using Fingerprint = std::array<unsigned char, key_fingerprint_size>;

constexpr std::size_t kFingerprintOffset = 1;
constexpr std::size_t kNonceOffset = kFingerprintOffset + key_fingerprint_size;
constexpr std::size_t kCiphertextOffset = kNonceOffset + sealed_secret_nonce_size;
// The version byte and the fingerprint, authenticated ahead of the context.
constexpr std::size_t kHeaderSize = kNonceOffset;

// Changing the label changes every fingerprint: it is part of the format.
constexpr char kFingerprintLabel[] = "connector key fingerprint v1";
constexpr char kHexDigits[] = "0123456789abcdef";

const char* const kOpenSslHint = "check the OpenSSL installation of the database server";
const char* const kSetAgainHint = "set the secret again with fb_alter_destination";

[[noreturn]] void throw_seal_failure() {
  throw SecretError("cannot encrypt the secret: OpenSSL failed", kOpenSslHint);
}

[[noreturn]] void throw_openssl_open_failure(std::string_view context) {
  throw SecretError(
      "the secret for " + std::string(context) + " cannot be decrypted: OpenSSL failed",
      kOpenSslHint);
}

CipherContext new_cipher_context() {
  CipherContext cipher(EVP_CIPHER_CTX_new());
  if (!cipher) throw std::bad_alloc();
  return cipher;
}

const unsigned char* bytes_of(std::string_view text) noexcept {
  return reinterpret_cast<const unsigned char*>(text.data());
}

std::string hex_of(const unsigned char* bytes, std::size_t size) {
  std::string hex;
  hex.reserve(2 * size);
  for (std::size_t i = 0; i < size; ++i) {
    hex += kHexDigits[bytes[i] >> 4];
    hex += kHexDigits[bytes[i] & 0x0F];
  }
  return hex;
}

Fingerprint fingerprint_of(const SecretKey& key) {
  DigestContext digest(EVP_MD_CTX_new());
  if (!digest) throw std::bad_alloc();
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int hash_size = 0;
  if (EVP_DigestInit_ex(digest.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(digest.get(), kFingerprintLabel, sizeof kFingerprintLabel - 1) != 1 ||
      EVP_DigestUpdate(digest.get(), key.data(), SecretKey::size) != 1 ||
      EVP_DigestFinal_ex(digest.get(), hash, &hash_size) != 1 || hash_size < key_fingerprint_size)
    throw SecretError("cannot compute the fingerprint of the key: OpenSSL failed", kOpenSslHint);
  Fingerprint fingerprint;
  std::copy_n(hash, key_fingerprint_size, fingerprint.begin());
  return fingerprint;
}

// EVP takes int lengths; secrets are tokens of a few hundred bytes.
bool fits_int(std::size_t size) noexcept { return size <= static_cast<std::size_t>(INT_MAX) / 2; }

// What is wrong with the shape of `sealed`, or "" when nothing is. The version
// comes first so that a blob of another version is reported as such whatever
// its length.
std::string layout_problem(std::string_view sealed) {
  if (sealed.empty()) return "is truncated";
  auto version = static_cast<unsigned char>(sealed[0]);
  if (version != sealed_secret_version)
    return "has an unknown format version (" + std::to_string(version) + ")";
  if (sealed.size() < sealed_secret_overhead) return "is truncated";
  if (!fits_int(sealed.size())) return "is too large";
  return {};
}

// Wipes the partly or wholly decrypted text unless the tag has been verified.
class WipeUnlessKept {
 public:
  explicit WipeUnlessKept(std::string& text) noexcept : text_(text) {}
  WipeUnlessKept(const WipeUnlessKept&) = delete;
  WipeUnlessKept& operator=(const WipeUnlessKept&) = delete;
  ~WipeUnlessKept() {
    if (!kept_) OPENSSL_cleanse(text_.data(), text_.size());
  }
  void keep() noexcept { kept_ = true; }

 private:
  std::string& text_;
  bool kept_ = false;
};

}  // namespace

std::string key_fingerprint(const SecretKey& key) {
  Fingerprint fingerprint = fingerprint_of(key);
  return hex_of(fingerprint.data(), fingerprint.size());
}

std::string seal_secret(const SecretKey& key, std::string_view plaintext,
                        std::string_view context) {
  if (!fits_int(plaintext.size()) || !fits_int(context.size()))
    throw SecretError("cannot encrypt the secret: it is too large");

  std::string sealed(sealed_secret_overhead + plaintext.size(), '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  out[0] = sealed_secret_version;
  Fingerprint fingerprint = fingerprint_of(key);
  std::copy(fingerprint.begin(), fingerprint.end(), out + kFingerprintOffset);
  unsigned char* nonce = out + kNonceOffset;
  unsigned char* ciphertext = out + kCiphertextOffset;
  unsigned char* tag = ciphertext + plaintext.size();
  if (RAND_bytes(nonce, static_cast<int>(sealed_secret_nonce_size)) != 1) throw_seal_failure();

  CipherContext cipher = new_cipher_context();
  int length = 0;
  if (EVP_EncryptInit_ex(cipher.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(cipher.get(), EVP_CTRL_GCM_SET_IVLEN,
                          static_cast<int>(sealed_secret_nonce_size), nullptr) != 1 ||
      EVP_EncryptInit_ex(cipher.get(), nullptr, nullptr, key.data(), nonce) != 1 ||
      EVP_EncryptUpdate(cipher.get(), nullptr, &length, out, static_cast<int>(kHeaderSize)) != 1)
    throw_seal_failure();
  if (!context.empty() && EVP_EncryptUpdate(cipher.get(), nullptr, &length, bytes_of(context),
                                            static_cast<int>(context.size())) != 1)
    throw_seal_failure();
  int written = 0;
  if (!plaintext.empty()) {
    if (EVP_EncryptUpdate(cipher.get(), ciphertext, &written, bytes_of(plaintext),
                          static_cast<int>(plaintext.size())) != 1)
      throw_seal_failure();
  }
  int final_length = 0;
  if (EVP_EncryptFinal_ex(cipher.get(), ciphertext + written, &final_length) != 1 ||
      static_cast<std::size_t>(written) + static_cast<std::size_t>(final_length) !=
          plaintext.size() ||
      EVP_CIPHER_CTX_ctrl(cipher.get(), EVP_CTRL_GCM_GET_TAG,
                          static_cast<int>(sealed_secret_tag_size), tag) != 1)
    throw_seal_failure();
  return sealed;
}

std::string sealed_key_fingerprint(std::string_view sealed) {
  std::string problem = layout_problem(sealed);
  if (!problem.empty()) throw SecretError("the stored value " + problem, kSetAgainHint);
  return hex_of(bytes_of(sealed) + kFingerprintOffset, key_fingerprint_size);
}

std::string open_secret(const SecretKey& key, std::string_view sealed, std::string_view context) {
  const std::string where = std::string(context);
  std::string problem = layout_problem(sealed);
  if (problem.empty() && !fits_int(context.size())) problem = "has a context that is too large";
  if (!problem.empty())
    throw SecretError("the stored value for " + where + " " + problem, kSetAgainHint);

  const unsigned char* in = bytes_of(sealed);
  Fingerprint expected = fingerprint_of(key);
  if (!std::equal(expected.begin(), expected.end(), in + kFingerprintOffset)) {
    std::string sealed_with = hex_of(in + kFingerprintOffset, key_fingerprint_size);
    throw SecretError("the secret for " + where + " was sealed with key " + sealed_with +
                          ", but the key file holds key " +
                          hex_of(expected.data(), expected.size()),
                      "restore the key file with fingerprint " + sealed_with +
                          " at connector.key_file, or " + kSetAgainHint);
  }

  const unsigned char* nonce = in + kNonceOffset;
  const unsigned char* ciphertext = in + kCiphertextOffset;
  std::size_t ciphertext_size = sealed.size() - sealed_secret_overhead;
  // EVP wants a writable tag buffer.
  unsigned char tag[sealed_secret_tag_size];
  std::copy_n(ciphertext + ciphertext_size, sealed_secret_tag_size, tag);

  std::string plaintext(ciphertext_size, '\0');
  WipeUnlessKept wipe(plaintext);
  auto* out = reinterpret_cast<unsigned char*>(plaintext.data());

  CipherContext cipher = new_cipher_context();
  int length = 0;
  if (EVP_DecryptInit_ex(cipher.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(cipher.get(), EVP_CTRL_GCM_SET_IVLEN,
                          static_cast<int>(sealed_secret_nonce_size), nullptr) != 1 ||
      EVP_DecryptInit_ex(cipher.get(), nullptr, nullptr, key.data(), nonce) != 1 ||
      EVP_DecryptUpdate(cipher.get(), nullptr, &length, in, static_cast<int>(kHeaderSize)) != 1)
    throw_openssl_open_failure(context);
  if (!context.empty() && EVP_DecryptUpdate(cipher.get(), nullptr, &length, bytes_of(context),
                                            static_cast<int>(context.size())) != 1)
    throw_openssl_open_failure(context);
  int written = 0;
  if (ciphertext_size > 0 && EVP_DecryptUpdate(cipher.get(), out, &written, ciphertext,
                                               static_cast<int>(ciphertext_size)) != 1)
    throw_openssl_open_failure(context);
  if (EVP_CIPHER_CTX_ctrl(cipher.get(), EVP_CTRL_GCM_SET_TAG,
                          static_cast<int>(sealed_secret_tag_size), tag) != 1)
    throw_openssl_open_failure(context);
  int final_length = 0;
  // The key is the right one, so only the blob or its context can be wrong.
  if (EVP_DecryptFinal_ex(cipher.get(), out + written, &final_length) != 1)
    throw SecretError("the stored value for " + where + " was altered or moved to another field",
                      kSetAgainHint);
  if (static_cast<std::size_t>(written) + static_cast<std::size_t>(final_length) != ciphertext_size)
    throw_openssl_open_failure(context);
  wipe.keep();
  return plaintext;
}

}  // namespace connector
