// SHA-256 as Meta wants it (lowercase hex of the digest of the UTF-8 bytes),
// and the raw digest.
#pragma once

#include <cstddef>
#include <string_view>

namespace connector {

inline constexpr std::size_t sha256_hex_length = 64;
inline constexpr std::size_t sha256_length = 32;

// Writes the sha256_length bytes of the digest.
void sha256(std::string_view data, unsigned char* out) noexcept;

// Writes exactly sha256_hex_length lowercase hex characters (no terminator).
void sha256_hex(std::string_view data, char* out) noexcept;

// True when `text` is 64 lowercase hex characters, the shape of a hashed value.
bool looks_like_sha256_hex(std::string_view text) noexcept;

}  // namespace connector
