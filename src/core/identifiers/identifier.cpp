#include "identifiers/identifier.hpp"

#include "errors.hpp"
#include "fault_injection.hpp"
#include "identifiers/normalize.hpp"
#include "identifiers/sha256_hex.hpp"
#include "identifiers/unicode_text.hpp"

namespace connector {
namespace {

// Text from PostgreSQL is valid UTF-8, but the core is also fed by tests and
// fuzzers: a value that is not valid UTF-8 is not a valid identifier.
bool is_acceptable(std::string_view value) {
  fault_injection::throw_if_armed();
  return unicode::is_ascii(value) || unicode::is_valid_utf8(value);
}

// Replaces the normalized value in `out` by its hash.
void hash_in_place(std::string& out) {
  char hex[sha256_hex_length];
  sha256_hex(out, hex);
  out.assign(hex, sha256_hex_length);
}

}  // namespace

bool normalize_identifier(Key key, std::string_view value, std::string& out) {
  return is_acceptable(value) && key_spec(key).normalize(value, out);
}

bool normalize_identifier(Key key, std::string_view value, DateOrder order, std::string& out) {
  if (!is_acceptable(value)) return false;
  switch (key) {
    case Key::DateOfBirth:
      return normalize::date_of_birth(value, order, out);
    case Key::BirthMonth:
      return normalize::birth_month(value, order, out);
    case Key::BirthDay:
      return normalize::birth_day(value, order, out);
    default:
      return key_spec(key).normalize(value, out);
  }
}

DateOrder parse_date_order(std::string_view text) {
  if (text.size() == 3) {
    std::string lower(text);
    for (char& c : lower)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
    if (lower == "mdy") return DateOrder::MonthFirst;
    if (lower == "dmy") return DateOrder::DayFirst;
  }
  throw InvalidArgument("unknown date order \"" + std::string(text) + "\"",
                        "Use MDY (month first: 2/16/1997) or DMY (day first: 16/2/1997).");
}

bool hash_identifier(Key key, std::string_view value, std::string& out) {
  if (!normalize_identifier(key, value, out)) return false;
  if (key_spec(key).hashed) hash_in_place(out);
  return true;
}

PhoneOutcome normalize_phone(std::string_view value, std::string_view default_country,
                             std::string& out) {
  if (!is_acceptable(value)) return PhoneOutcome::Invalid;
  if (!unicode::is_valid_utf8(default_country)) return PhoneOutcome::UnknownCountry;
  return normalize::phone_for_country(value, default_country, out);
}

bool hash_phone(std::string_view value, std::string_view default_country, std::string& out) {
  if (normalize_phone(value, default_country, out) != PhoneOutcome::Valid) return false;
  hash_in_place(out);
  return true;
}

}  // namespace connector
