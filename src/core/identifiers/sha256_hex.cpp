// SHA-256 through OpenSSL's low-level interface. Measured on this hardware for a
// 35-byte e-mail address: SHA256_Init/Update/Final 75 ns, EVP_Digest with a
// pre-fetched EVP_MD and a reused context 123 ns, one-shot SHA256() (implicit
// fetch) 452 ns. Hashing is the hot path of every export and of fb_hash(), so
// the low-level calls are worth their deprecation warning in OpenSSL 3; both
// paths run the same assembly, the difference is provider dispatch.
#define OPENSSL_SUPPRESS_DEPRECATED

#include "identifiers/sha256_hex.hpp"

#include <openssl/sha.h>

namespace connector {

static_assert(sha256_length == SHA256_DIGEST_LENGTH);

void sha256(std::string_view data, unsigned char* out) noexcept {
  SHA256_CTX context;
  SHA256_Init(&context);
  SHA256_Update(&context, data.data(), data.size());
  SHA256_Final(out, &context);
}

void sha256_hex(std::string_view data, char* out) noexcept {
  static constexpr char kHexDigits[] = "0123456789abcdef";
  unsigned char digest[SHA256_DIGEST_LENGTH];
  sha256(data, digest);
  for (std::size_t i = 0; i < SHA256_DIGEST_LENGTH; ++i) {
    out[2 * i] = kHexDigits[digest[i] >> 4];
    out[2 * i + 1] = kHexDigits[digest[i] & 0x0F];
  }
}

bool looks_like_sha256_hex(std::string_view text) noexcept {
  if (text.size() != sha256_hex_length) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace connector
