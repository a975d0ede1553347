// The identifier keys connector understands: one table, the single source of
// truth for which keys exist, which are hashed before they leave the database
// and how each one is normalized. SQL functions, the export engine and the
// tests all go through it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace connector {

enum class Key : std::uint8_t {
  Email,
  Phone,
  Gender,
  DateOfBirth,  // DOB: a whole date, sent to Meta as DOBY/DOBM/DOBD
  BirthYear,
  BirthMonth,
  BirthDay,
  FirstName,
  LastName,
  FirstInitial,
  City,
  State,
  Zip,
  Country,
  MobileAdvertiserId,
  ExternId,
};

// Writes the normalized form of `value` to `out` (replacing its contents) and
// returns true, or returns false when the value cannot be normalized to a valid
// one. `out` is never left empty on success.
using Normalizer = bool (*)(std::string_view value, std::string& out);

struct KeySpec {
  Key key;
  std::string_view name;  // Meta's schema name, upper case
  bool hashed;            // SHA-256 before sending; MADID and EXTERN_ID are sent as is
  Normalizer normalize;
  // Segment column names an export maps to this key when no mapping is given,
  // space-separated, lowercase.
  std::string_view column_names;
};

inline constexpr std::size_t key_count = 16;

const KeySpec& key_spec(Key key) noexcept;
const KeySpec& key_spec_at(std::size_t index) noexcept;  // index < key_count, table order

// Case-insensitive lookup of a key name such as "email" or "EXTERN_ID".
std::optional<Key> find_key(std::string_view name) noexcept;

// Like find_key, but throws InvalidArgument naming the valid keys.
Key parse_key(std::string_view name);

// "EMAIL, PHONE, ...": the valid key names, for error messages.
std::string valid_key_names();

}  // namespace connector
