// Secrets stored in the database (access tokens, app secrets) are sealed with
// AES-256-GCM under the key file's key, so a database dump alone reveals
// nothing, and a blob altered or copied to another row or field fails to open
// instead of yielding a wrong secret. Each blob names the key that sealed it by
// fingerprint, so a missing key file, a key file holding another key and an
// altered blob are three different errors, each with its own remedy.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "secrets/key_file.hpp"

namespace connector {

inline constexpr unsigned char sealed_secret_version = 0x02;
inline constexpr std::size_t key_fingerprint_size = 8;
inline constexpr std::size_t sealed_secret_nonce_size = 12;
inline constexpr std::size_t sealed_secret_tag_size = 16;
// An empty secret seals to exactly this many bytes; any shorter blob is truncated.
inline constexpr std::size_t sealed_secret_overhead =
    1 + key_fingerprint_size + sealed_secret_nonce_size + sealed_secret_tag_size;

// The first 8 bytes of SHA-256("connector key fingerprint v1" || the 32 key
// bytes), as 16 lowercase hex characters. The label keeps the fingerprint from
// being the hash of the bare key that some other tool might publish. An
// operator can fingerprint a key file without the extension:
//   (printf 'connector key fingerprint v1'; xxd -r -p FILE) | sha256sum | cut -c1-16
// Throws SecretError when OpenSSL fails.
std::string key_fingerprint(const SecretKey& key);

// Returns a binary blob: version byte 0x02 | 8-byte key fingerprint | 12-byte
// random nonce | ciphertext | 16-byte tag. The version byte, the fingerprint
// and then `context` are authenticated; `context` is not stored: it names where
// the blob lives (e.g. "destination/42/access_token"), and opening it under any
// other context fails. Throws SecretError when OpenSSL fails.
std::string seal_secret(const SecretKey& key, std::string_view plaintext, std::string_view context);

// The fingerprint of the key that sealed `sealed`, in key_fingerprint's form,
// read without any key: it names the key file needed when that file is missing.
// Throws SecretError for a truncated blob or an unknown version.
std::string sealed_key_fingerprint(std::string_view sealed);

// Throws SecretError for a blob sealed with another key (the message names both
// fingerprints), one altered or sealed under a different context, a truncated
// blob, or an unknown version. The message never holds the secret.
std::string open_secret(const SecretKey& key, std::string_view sealed, std::string_view context);

}  // namespace connector
