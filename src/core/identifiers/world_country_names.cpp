// Built from ICU's CLDR data (the ICU that libphonenumber and PostgreSQL load
// already): for every language (locales without a region: "de", "pt", "ja"),
// the display name of every ISO country. Regional locales add almost no names
// and would triple the time to build.

#include "identifiers/world_country_names.hpp"

#include <unicode/uloc.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "identifiers/geo_names.hpp"
#include "identifiers/unicode_text.hpp"

namespace connector::geo {
namespace {

struct Name {
  std::string key;  // unicode::folded_letters of the name
  std::array<char, 2> code;
};

// A country's name in `locale`, in UTF-8; empty when ICU has none of its own
// for it (it would answer the code, or a fallback language's name).
std::string display_name(const char* country, const char* locale) {
  std::string id = std::string("und_") + country;
  UChar name[128];
  UErrorCode status = U_ZERO_ERROR;
  int32_t length = uloc_getDisplayCountry(id.c_str(), locale, name, 128, &status);
  if (U_FAILURE(status) || status == U_USING_DEFAULT_WARNING || length <= 0) return {};
  char utf8[512];
  int32_t utf8_length = 0;
  status = U_ZERO_ERROR;
  u_strToUTF8(utf8, sizeof utf8, &utf8_length, name, length, &status);
  if (U_FAILURE(status)) return {};
  return std::string(utf8, static_cast<std::size_t>(utf8_length));
}

std::vector<Name> build_names() {
  std::vector<Name> names;
  std::string key;
  for (const char* const* country = uloc_getISOCountries(); *country != nullptr; ++country) {
    std::array<char, 2> code = {static_cast<char>((*country)[0] | 0x20),
                                static_cast<char>((*country)[1] | 0x20)};
    // Only the codes Meta matches on: assigned ISO 3166-1 alpha-2.
    if ((*country)[2] != '\0' || !is_country_code(std::string_view(code.data(), 2))) continue;
    for (int32_t i = 0, count = uloc_countAvailable(); i < count; ++i) {
      const char* locale = uloc_getAvailable(i);
      char region[ULOC_COUNTRY_CAPACITY];
      UErrorCode status = U_ZERO_ERROR;
      uloc_getCountry(locale, region, sizeof region, &status);
      if (U_FAILURE(status) || region[0] != '\0') continue;
      unicode::folded_letters(display_name(*country, locale), key);
      if (unicode::code_point_count(key) >= 2) names.push_back({key, code});
    }
  }
  std::sort(names.begin(), names.end(), [](const Name& a, const Name& b) {
    return a.key != b.key ? a.key < b.key : a.code < b.code;
  });
  // One name, one country: a name two countries share says neither.
  std::vector<Name> unique;
  for (std::size_t i = 0; i < names.size();) {
    std::size_t end = i;
    bool agree = true;
    while (end < names.size() && names[end].key == names[i].key) {
      agree = agree && names[end].code == names[i].code;
      ++end;
    }
    if (agree) unique.push_back(std::move(names[i]));
    i = end;
  }
  unique.shrink_to_fit();
  return unique;
}

}  // namespace

std::optional<std::string_view> country_code_in_any_language(std::string_view value) {
  static const std::vector<Name> names = build_names();
  std::string key;
  unicode::folded_letters(value, key);
  if (key.empty()) return std::nullopt;
  auto it = std::lower_bound(names.begin(), names.end(), key,
                             [](const Name& name, const std::string& k) { return name.key < k; });
  if (it == names.end() || it->key != key) return std::nullopt;
  return std::string_view(it->code.data(), 2);
}

}  // namespace connector::geo
