// One-shot HMAC(): it is neither deprecated in OpenSSL 3 nor on a hot path (one
// proof per HTTP request), so there is no context to manage. The time-stamped
// message holds the access token, so that copy is wiped after use.

#include "graph/appsecret_proof.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <climits>
#include <stdexcept>

#include "errors.hpp"

namespace connector {
namespace {

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  if (key.size() > static_cast<std::size_t>(INT_MAX))
    throw InvalidArgument("the app secret is too long");
  // OpenSSL reads a null key as "reuse the previous key"; an empty view may be null.
  static const unsigned char kEmpty[1] = {0};
  const void* key_bytes = key.empty() ? kEmpty : static_cast<const void*>(key.data());
  const unsigned char* message_bytes =
      message.empty() ? kEmpty : reinterpret_cast<const unsigned char*>(message.data());

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  if (HMAC(EVP_sha256(), key_bytes, static_cast<int>(key.size()), message_bytes, message.size(),
           digest, &digest_length) == nullptr ||
      digest_length != 32)
    throw std::runtime_error("HMAC-SHA256 failed in OpenSSL");

  static constexpr char kHexDigits[] = "0123456789abcdef";
  std::string hex(2 * digest_length, '\0');
  for (unsigned int i = 0; i < digest_length; ++i) {
    hex[2 * i] = kHexDigits[digest[i] >> 4];
    hex[2 * i + 1] = kHexDigits[digest[i] & 0x0F];
  }
  return hex;
}

}  // namespace

std::string appsecret_proof(std::string_view app_secret, std::string_view access_token) {
  return hmac_sha256_hex(app_secret, access_token);
}

std::string appsecret_proof(std::string_view app_secret, std::string_view access_token,
                            std::int64_t unix_seconds) {
  std::string message;
  message.reserve(access_token.size() + 21);  // '|' and at most 20 characters of int64
  message.append(access_token);
  message += '|';
  message += std::to_string(unix_seconds);
  struct Wipe {
    std::string& text;
    ~Wipe() { OPENSSL_cleanse(text.data(), text.size()); }
  } wipe{message};
  return hmac_sha256_hex(app_secret, message);
}

}  // namespace connector
