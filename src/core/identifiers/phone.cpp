// Phone numbers. Meta wants digits only, no leading zeros, country calling code
// included. A number already in international form needs only that clean-up
// and a length check, which is the fast path every row without a default
// country takes. With a default country, libphonenumber (Google's metadata of
// every numbering plan) turns a national number into the international one,
// removing the trunk prefix: "020 7946 0958" in GB is 442079460958.

#include <phonenumbers/logger.h>
#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include <array>
#include <atomic>
#include <bitset>
#include <cstdint>
#include <set>

#include "identifiers/normalize.hpp"
#include "identifiers/unicode_text.hpp"

namespace connector::normalize {
namespace {

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

constexpr std::size_t kMaxE164Digits = 15;
constexpr int kCallingCodeLimit = 1000;  // calling codes have at most 3 digits

const PhoneNumberUtil& phone_util() {
  static const PhoneNumberUtil* util = [] {
    PhoneNumberUtil* instance = PhoneNumberUtil::GetInstance();
    // Its default logger writes parse failures to stdout, i.e. the server log.
    instance->SetLogger(new i18n::phonenumbers::NullLogger());
    return instance;
  }();
  return *util;
}

const std::bitset<kCallingCodeLimit>& calling_codes() {
  static const std::bitset<kCallingCodeLimit> codes = [] {
    std::set<int> supported;
    phone_util().GetSupportedCallingCodes(&supported);
    std::bitset<kCallingCodeLimit> bits;
    for (int code : supported)
      if (code > 0 && code < kCallingCodeLimit) bits.set(static_cast<std::size_t>(code));
    return bits;
  }();
  return codes;
}

// Digits of `value`, without leading zeros.
void international_digits(std::string_view value, std::string& out) {
  out.clear();
  for (char c : value)
    if (c >= '0' && c <= '9' && !(c == '0' && out.empty())) out.push_back(c);
}

// libphonenumber's IsPossibleNumber depends only on the calling code and the
// length of the national significant number, yet looks up (and allocates) the
// code's list of regions on every call: a third of an export's CPU. Its
// answers are kept instead, per calling code, as a mask of the possible
// lengths; bit 0 says the mask is known. Benign races: two threads store the
// same mask.
constexpr std::size_t kMaxNationalDigits = 17;  // libphonenumber's kMaxLengthForNsn

bool is_possible_length(int calling_code, std::size_t national_digits) {
  static std::array<std::atomic<std::uint32_t>, kCallingCodeLimit> masks{};
  if (national_digits == 0 || national_digits > kMaxNationalDigits) return false;
  std::atomic<std::uint32_t>& known = masks[static_cast<std::size_t>(calling_code)];
  std::uint32_t mask = known.load(std::memory_order_relaxed);
  if (mask == 0) {
    mask = 1;
    std::uint64_t national = 1;  // 1, 10, 100...: a number of each length
    for (std::size_t length = 1; length <= kMaxNationalDigits; ++length, national *= 10) {
      PhoneNumber number;
      number.set_country_code(calling_code);
      number.set_national_number(national);
      if (phone_util().IsPossibleNumber(number)) mask |= 1u << length;
    }
    known.store(mask, std::memory_order_relaxed);
  }
  return (mask >> national_digits) & 1u;
}

// True when `digits` (no leading zero) start with an assigned calling code
// and the rest has a length that numbering plan allows.
bool is_possible_international(const std::string& digits) {
  if (digits.size() < 2 || digits.size() > kMaxE164Digits) return false;
  // Calling codes are prefix-free: at most one of the 1-3 digit prefixes is assigned.
  int code = 0;
  for (std::size_t length = 1; length <= 3 && length < digits.size(); ++length) {
    code = code * 10 + (digits[length - 1] - '0');
    if (!calling_codes().test(static_cast<std::size_t>(code))) continue;
    std::string_view national = std::string_view(digits).substr(length);
    // "000" is no number, in any plan.
    if (national.find_first_not_of('0') == std::string_view::npos) return false;
    return is_possible_length(code, national.size());
  }
  return false;
}

}  // namespace

bool phone(std::string_view value, std::string& out) {
  international_digits(value, out);
  return is_possible_international(out);
}

bool phone_for_country(std::string_view value, std::string_view default_country, std::string& out) {
  std::string_view trimmed = unicode::trim(value);
  std::string region;
  if (trimmed.empty() || trimmed.front() == '+' || default_country.empty() ||
      !country(default_country, region))
    return phone(value, out);
  for (char& c : region) c = static_cast<char>(c - ('a' - 'A'));

  PhoneNumber number;
  if (phone_util().Parse(std::string(trimmed), region, &number) ==
          PhoneNumberUtil::NO_PARSING_ERROR &&
      phone_util().IsPossibleNumber(number)) {
    std::string national;
    phone_util().GetNationalSignificantNumber(number, &national);
    out = std::to_string(number.country_code());
    out += national;
    // The same rule as for international input: "000" in DE is not a number.
    if (is_possible_international(out)) return true;
  }
  // Not a number of that country: it may already be international without
  // its "+" ("442079460958" with a US default).
  return phone(value, out);
}

}  // namespace connector::normalize
