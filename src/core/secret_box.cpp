// AES-256-GCM through EVP. A fresh random 96-bit nonce per seal is safe for far
// more seals than a destination table will ever see (the GCM bound is about
// 2^32 per key). The version byte lets a later format or key rotation coexist
// with blobs already stored. GCM releases plaintext before it checks the tag,
// so a failed open wipes what it decrypted before throwing.

#include "secret_box.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <climits>
#include <memory>
#include <new>
#include <string>

#include "errors.hpp"

namespace connector {
namespace {

struct ContextDeleter {
  void operator()(EVP_CIPHER_CTX* context) const noexcept { EVP_CIPHER_CTX_free(context); }
};
using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, ContextDeleter>;

constexpr std::size_t kNonceOffset = 1;
constexpr std::size_t kCiphertextOffset = kNonceOffset + sealed_secret_nonce_size;

const char* const kOpenHint =
    "if the key file was replaced, restore the original from your backup; otherwise set the "
    "secret again with fb_alter_destination";

[[noreturn]] void throw_seal_failure() {
  throw SecretError("cannot encrypt the secret: OpenSSL failed",
                    "check the OpenSSL installation of the database server");
}

[[noreturn]] void throw_open_failure(std::string_view context, const char* problem) {
  throw SecretError("the secret for " + std::string(context) + " cannot be decrypted: " + problem,
                    kOpenHint);
}

CipherContext new_cipher_context() {
  CipherContext cipher(EVP_CIPHER_CTX_new());
  if (!cipher) throw std::bad_alloc();
  return cipher;
}

const unsigned char* bytes_of(std::string_view text) noexcept {
  return reinterpret_cast<const unsigned char*>(text.data());
}

// EVP takes int lengths; secrets are tokens of a few hundred bytes.
bool fits_int(std::size_t size) noexcept { return size <= static_cast<std::size_t>(INT_MAX) / 2; }

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

std::string seal_secret(const SecretKey& key, std::string_view plaintext,
                        std::string_view context) {
  if (!fits_int(plaintext.size()) || !fits_int(context.size()))
    throw SecretError("cannot encrypt the secret: it is too large");

  std::string sealed(sealed_secret_overhead + plaintext.size(), '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  out[0] = sealed_secret_version;
  unsigned char* nonce = out + kNonceOffset;
  unsigned char* ciphertext = out + kCiphertextOffset;
  unsigned char* tag = ciphertext + plaintext.size();
  if (RAND_bytes(nonce, static_cast<int>(sealed_secret_nonce_size)) != 1) throw_seal_failure();

  CipherContext cipher = new_cipher_context();
  int length = 0;
  if (EVP_EncryptInit_ex(cipher.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(cipher.get(), EVP_CTRL_GCM_SET_IVLEN,
                          static_cast<int>(sealed_secret_nonce_size), nullptr) != 1 ||
      EVP_EncryptInit_ex(cipher.get(), nullptr, nullptr, key.data(), nonce) != 1)
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

std::string open_secret(const SecretKey& key, std::string_view sealed, std::string_view context) {
  if (sealed.size() < sealed_secret_overhead)
    throw_open_failure(context, "the stored value is truncated");
  if (static_cast<unsigned char>(sealed[0]) != sealed_secret_version)
    throw_open_failure(context, "the stored value has an unknown format version");
  if (!fits_int(sealed.size()) || !fits_int(context.size()))
    throw_open_failure(context, "the stored value is too large");

  const unsigned char* in = bytes_of(sealed);
  const unsigned char* nonce = in + kNonceOffset;
  const unsigned char* ciphertext = in + kCiphertextOffset;
  std::size_t ciphertext_size = sealed.size() - sealed_secret_overhead;
  // EVP wants a writable tag buffer.
  unsigned char tag[sealed_secret_tag_size];
  for (std::size_t i = 0; i < sealed_secret_tag_size; ++i) tag[i] = ciphertext[ciphertext_size + i];

  std::string plaintext(ciphertext_size, '\0');
  WipeUnlessKept wipe(plaintext);
  auto* out = reinterpret_cast<unsigned char*>(plaintext.data());

  CipherContext cipher = new_cipher_context();
  int length = 0;
  if (EVP_DecryptInit_ex(cipher.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(cipher.get(), EVP_CTRL_GCM_SET_IVLEN,
                          static_cast<int>(sealed_secret_nonce_size), nullptr) != 1 ||
      EVP_DecryptInit_ex(cipher.get(), nullptr, nullptr, key.data(), nonce) != 1)
    throw_open_failure(context, "OpenSSL failed");
  if (!context.empty() && EVP_DecryptUpdate(cipher.get(), nullptr, &length, bytes_of(context),
                                            static_cast<int>(context.size())) != 1)
    throw_open_failure(context, "OpenSSL failed");
  int written = 0;
  if (ciphertext_size > 0 && EVP_DecryptUpdate(cipher.get(), out, &written, ciphertext,
                                               static_cast<int>(ciphertext_size)) != 1)
    throw_open_failure(context, "OpenSSL failed");
  if (EVP_CIPHER_CTX_ctrl(cipher.get(), EVP_CTRL_GCM_SET_TAG,
                          static_cast<int>(sealed_secret_tag_size), tag) != 1)
    throw_open_failure(context, "OpenSSL failed");
  int final_length = 0;
  if (EVP_DecryptFinal_ex(cipher.get(), out + written, &final_length) != 1)
    throw_open_failure(context, "wrong key file or altered data");
  if (static_cast<std::size_t>(written) + static_cast<std::size_t>(final_length) != ciphertext_size)
    throw_open_failure(context, "OpenSSL failed");
  wipe.keep();
  return plaintext;
}

}  // namespace connector
