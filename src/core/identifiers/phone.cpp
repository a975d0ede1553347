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

// The number part of a written phone value: what follows its first digit up
// to an extension ("ext 12", "x5", "#5", ";ext=5"), which is dropped, never
// concatenated; a letter, '#', ';' or ',' after the first digit ends the
// number. A trunk prefix written in parentheses after the calling code
// ("+44 (0)20 ...", "+49 (0)30 ...") is dropped too.
std::string_view without_extension(std::string_view value) {
  bool seen_digit = false;
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c >= '0' && c <= '9') {
      seen_digit = true;
    } else if (seen_digit && (c == '#' || c == ';' || c == ',' || (c >= 'a' && c <= 'z') ||
                              (c >= 'A' && c <= 'Z'))) {
      return value.substr(0, i);
    }
  }
  return value;
}

// Digits of a number written in international form (or read as one), without
// the leading zeros of an international prefix ("00") and without a "(0)".
void international_digits(std::string_view value, std::string& out) {
  out.clear();
  value = without_extension(value);
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '(' && !out.empty()) {
      std::size_t close = value.find(')', i);
      if (close != std::string_view::npos && close > i + 1 &&
          value.substr(i + 1, close - i - 1).find_first_not_of('0') == std::string_view::npos) {
        i = close;
        continue;
      }
    }
    if (c >= '0' && c <= '9' && !(c == '0' && out.empty())) out.push_back(c);
  }
}

// "+..." or "00...": the number carries its own calling code.
bool is_written_international(std::string_view trimmed) {
  return (!trimmed.empty() && trimmed.front() == '+') || trimmed.substr(0, 2) == "00";
}

// libphonenumber's IsPossibleNumber depends only on the calling code and the
// length of the national significant number (its possible lengths rules), yet looks up (and allocates) the
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
      // Lengths only dialled locally (IS_POSSIBLE_LOCAL_ONLY) are no number
      // anyone can be reached at from abroad: "123" is not 49123.
      if (phone_util().IsPossibleNumberWithReason(number) == PhoneNumberUtil::IS_POSSIBLE)
        mask |= 1u << length;
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
  std::string_view trimmed = unicode::trim(value);
  international_digits(trimmed, out);
  // Without "+" or "00", a number whose first digit is 0 starts with a trunk
  // prefix: it is national, of a country we are not told.
  if (!is_written_international(trimmed)) {
    std::size_t first_digit = trimmed.find_first_of("0123456789");
    if (first_digit != std::string_view::npos && trimmed[first_digit] == '0') return false;
  }
  return is_possible_international(out);
}

PhoneOutcome phone_for_country(std::string_view value, std::string_view default_country,
                               std::string& out) {
  std::string_view trimmed = unicode::trim(value);
  if (trimmed.empty() || is_written_international(trimmed) || unicode::trim(default_country).empty())
    return phone(value, out) ? PhoneOutcome::Valid : PhoneOutcome::Invalid;
  std::string region;
  // A national number of a country we do not know is not guessed at: read as
  // international, "604 123 456" in "Espana" would be a number in Malaysia.
  if (!country(default_country, region)) return PhoneOutcome::UnknownCountry;
  for (char& c : region) c = static_cast<char>(c - ('a' - 'A'));

  // libphonenumber reads the national form: trunk prefix, the region's own
  // calling code without "+", its international prefix.
  PhoneNumber number;
  if (phone_util().Parse(std::string(without_extension(trimmed)), region, &number) !=
      PhoneNumberUtil::NO_PARSING_ERROR)
    return PhoneOutcome::Invalid;
  std::string national;
  phone_util().GetNationalSignificantNumber(number, &national);
  out = std::to_string(number.country_code());
  out += national;
  // The same length rules as for international input; a number that does
  // not fit the country is not read as some other country's either.
  return is_possible_international(out) ? PhoneOutcome::Valid : PhoneOutcome::Invalid;
}

}  // namespace connector::normalize
