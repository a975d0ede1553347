// Short helpers for the core tests: a key by name, and an optional result.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "identifiers/identifier.hpp"
#include "identifiers/keys.hpp"

namespace connector::testing {

inline std::optional<std::string> normalized(std::string_view key, std::string_view value) {
  std::string out;
  if (!normalize_identifier(parse_key(key), value, out)) return std::nullopt;
  return out;
}

inline std::optional<std::string> hashed(std::string_view key, std::string_view value) {
  std::string out;
  if (!hash_identifier(parse_key(key), value, out)) return std::nullopt;
  return out;
}

inline std::optional<std::string> phone_in(std::string_view value, std::string_view country) {
  std::string out;
  if (normalize_phone(value, country, out) != PhoneOutcome::Valid) return std::nullopt;
  return out;
}

}  // namespace connector::testing
