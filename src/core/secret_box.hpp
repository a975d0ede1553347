// Secrets stored in the database (access tokens, app secrets) are sealed with
// AES-256-GCM under the key file's key, so a database dump alone reveals
// nothing, and a blob altered or copied to another row or field fails to open
// instead of yielding a wrong secret.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "key_file.hpp"

namespace connector {

inline constexpr unsigned char sealed_secret_version = 0x01;
inline constexpr std::size_t sealed_secret_nonce_size = 12;
inline constexpr std::size_t sealed_secret_tag_size = 16;
// An empty secret seals to exactly this many bytes; any shorter blob is truncated.
inline constexpr std::size_t sealed_secret_overhead =
    1 + sealed_secret_nonce_size + sealed_secret_tag_size;

// Returns a binary blob: version byte 0x01 | 12-byte random nonce | ciphertext |
// 16-byte tag. `context` is authenticated but not stored: it names where the
// blob lives (e.g. "destination/42/access_token"), and opening it under any
// other context fails. Throws SecretError when OpenSSL fails.
std::string seal_secret(const SecretKey& key, std::string_view plaintext, std::string_view context);

// Throws SecretError for a wrong key, a different context, a truncated or
// altered blob, or an unknown version. The message never holds the secret.
std::string open_secret(const SecretKey& key, std::string_view sealed, std::string_view context);

}  // namespace connector
