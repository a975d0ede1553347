// libFuzzer target over every key's normalizer. The first byte picks the key
// (or PHONE with a default country), the rest is the value. Beyond "no crash,
// no sanitizer report", it checks the properties every caller relies on.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "identifiers/identifier.hpp"
#include "identifiers/keys.hpp"
#include "identifiers/sha256_hex.hpp"
#include "identifiers/unicode_text.hpp"

namespace {

using namespace connector;

void require(bool condition) {
  if (!condition) std::abort();
}

void check_key(Key key, std::string_view value) {
  std::string normalized;
  std::string hashed;
  std::string again;
  bool has_value = normalize_identifier(key, value, normalized);
  require(hash_identifier(key, value, hashed) == has_value);
  if (!has_value) return;
  require(!normalized.empty());
  require(unicode::is_valid_utf8(normalized));
  if (key_spec(key).hashed) {
    require(looks_like_sha256_hex(hashed));
    require(hashed != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  } else {
    require(hashed == normalized);
  }
  // A normalized value is a fixed point: normalizing it again changes nothing.
  require(normalize_identifier(key, normalized, again));
  require(again == normalized);
}

void check_phone_with_country(std::string_view country, std::string_view value) {
  std::string normalized;
  std::string again;
  if (normalize_phone(value, country, normalized) != PhoneOutcome::Valid) return;
  // The result is a complete international number on its own.
  require(normalize_phone(normalized, "", again) == PhoneOutcome::Valid);
  require(again == normalized);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view value(reinterpret_cast<const char*>(data + 1), size - 1);
  std::size_t selector = data[0] % (key_count + 1);
  if (selector < key_count) {
    check_key(key_spec_at(selector).key, value);
  } else {
    static constexpr std::string_view kCountries[] = {
        "US", "GB", "fr", "DE", "IN", "BR", "JP", "United Kingdom", "", "XX"};
    std::size_t pick =
        value.empty() ? 0 : static_cast<unsigned char>(value[0]) % std::size(kCountries);
    check_phone_with_country(kCountries[pick], value.empty() ? value : value.substr(1));
  }
  return 0;
}
