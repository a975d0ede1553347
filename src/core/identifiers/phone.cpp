// Phone numbers. Meta wants digits only, no leading zeros, country calling code
// included. A number already in international form needs only that clean-up
// and a length check, which is the fast path every row without a default
// country takes. With a default country, libphonenumber (Google's metadata of
// every numbering plan) turns a national number into the international one,
// removing the trunk prefix: "020 7946 0958" in GB is 442079460958.

#include <phonenumbers/logger.h>
#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include <bitset>
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
    std::size_t leading_zeros = national.find_first_not_of('0');
    if (leading_zeros == std::string_view::npos) return false;
    PhoneNumber number;
    number.set_country_code(code);
    number.set_national_number(std::stoull(std::string(national)));
    if (leading_zeros > 0) {
      number.set_italian_leading_zero(true);
      number.set_number_of_leading_zeros(static_cast<int>(leading_zeros));
    }
    return phone_util().IsPossibleNumber(number);
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
