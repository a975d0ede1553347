// Normalizers for the text keys: e-mail, names, gender, address parts and the
// unhashed identifiers. Rules and their sources: docs/graph-api.md section 7.2, with
// the decisions of section 7.4.

#include "identifiers/normalize.hpp"

#include <algorithm>
#include <array>

#include "identifiers/geo_names.hpp"
#include "identifiers/sha256_hex.hpp"
#include "identifiers/unicode_text.hpp"
#include "identifiers/world_country_names.hpp"

namespace connector::normalize {
namespace {

using unicode::Keep;

bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

// Lowercase ASCII letters a-z of `value`; everything else dropped.
void ascii_letters(std::string_view value, std::string& out) {
  out.clear();
  for (char c : value) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
    if (c >= 'a' && c <= 'z') out.push_back(c);
  }
}

// Characters allowed in an address: RFC 5322's atext and dots in the local
// part, letters, digits and hyphens in domain labels; bytes of non-ASCII
// characters (internationalized addresses) in both.
struct EmailCharacters {
  bool local[256] = {};
  bool domain[256] = {};
  constexpr EmailCharacters() {
    for (int c = 0x80; c < 256; ++c) local[c] = domain[c] = true;
    for (int c = '0'; c <= '9'; ++c) local[c] = domain[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) local[c] = domain[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) local[c] = domain[c] = true;
    for (char c : std::string_view("!#$%&'*+/=?^_`{|}~.-"))
      local[static_cast<unsigned char>(c)] = true;
    domain[static_cast<unsigned char>('-')] = true;
  }
};
constexpr EmailCharacters kEmailCharacters;

// local@domain in one pass (this is the hot path of most exports): a local
// part of 1-64 characters without leading, trailing or doubled dots; a domain
// of two or more labels of 1-63 characters, none starting or ending with a
// hyphen, and a top-level label of two or more characters, not all digits.
bool is_email_shaped(std::string_view address) {
  std::size_t at = address.find('@');
  if (at == 0 || at == std::string_view::npos || at > 64) return false;
  char previous = '.';  // so that a leading dot counts as doubled
  for (std::size_t i = 0; i < at; ++i) {
    char c = address[i];
    if (!kEmailCharacters.local[static_cast<unsigned char>(c)] || (c == '.' && previous == '.'))
      return false;
    previous = c;
  }
  if (previous == '.') return false;

  std::string_view domain = address.substr(at + 1);
  if (domain.empty() || domain.size() > 253) return false;
  std::size_t labels = 1;
  std::size_t label_length = 0;
  bool label_all_digits = true;
  previous = '.';
  for (char c : domain) {
    if (c == '.') {
      if (label_length == 0 || previous == '-') return false;
      ++labels;
      label_length = 0;
      label_all_digits = true;
    } else {
      if (!kEmailCharacters.domain[static_cast<unsigned char>(c)] ||
          (c == '-' && previous == '.') || ++label_length > 63)
        return false;
      label_all_digits = label_all_digits && is_ascii_digit(c);
    }
    previous = c;
  }
  return labels >= 2 && label_length >= 2 && previous != '-' && !label_all_digits;
}

// Gender words Meta's capi-param-builder maps to m and f; sorted for lookup.
constexpr std::array<std::string_view, 37> kMaleWords = {
    "bloke",  "boy",  "boyfriend", "brother", "chap",   "count",     "dad",    "daddy",
    "dude",   "duke", "emperor",   "father",  "fellow", "gentleman", "god",    "groom",
    "guy",    "he",   "him",       "himself", "his",    "husband",   "king",   "lad",
    "lord",   "m",    "male",      "man",     "mister", "mr",        "nephew", "papa",
    "prince", "sir",  "son",       "uncle",   "widower"};
constexpr std::array<std::string_view, 38> kFemaleWords = {
    "aunt",    "belle",   "bride",  "chick",  "countess", "daughter",   "dame",    "duchess",
    "empress", "f",       "female", "gal",    "girl",     "girlfriend", "goddess", "her",
    "hers",    "herself", "lady",   "lass",   "ma'am",    "madam",      "maiden",  "mama",
    "miss",    "mom",     "mommy",  "mother", "mrs",      "ms",         "niece",   "princess",
    "queen",   "she",     "sister", "widow",  "wife",     "woman"};

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& sorted_words, std::string_view word) {
  return std::binary_search(sorted_words.begin(), sorted_words.end(), word);
}

bool is_us_zip_plus_four(std::string_view zip) {
  if (zip.size() != 10 || zip[5] != '-') return false;
  for (std::size_t i = 0; i < zip.size(); ++i)
    if (i != 5 && !is_ascii_digit(zip[i])) return false;
  return true;
}

}  // namespace

bool email(std::string_view value, std::string& out) {
  if (!unicode::lower_nfc(unicode::trim(value), out, Keep::Everything)) return false;
  // ASCII whitespace fails the character tables; non-ASCII spaces need a look.
  if (!unicode::is_ascii(out) && unicode::has_white_space(out)) return false;
  return is_email_shaped(out);
}

bool gender(std::string_view value, std::string& out) {
  std::string word;
  if (!unicode::lower_nfc(unicode::trim(value), word, Keep::Everything)) return false;
  if (contains(kMaleWords, word)) {
    out = "m";
    return true;
  }
  if (contains(kFemaleWords, word)) {
    out = "f";
    return true;
  }
  return false;
}

bool first_or_last_name(std::string_view value, std::string& out) {
  return unicode::lower_nfc(value, out, Keep::LettersMarksNumbers) && !out.empty();
}

bool first_initial(std::string_view value, std::string& out) {
  if (!first_or_last_name(value, out)) return false;
  out.resize(unicode::first_code_point_length(out));
  return true;
}

bool city(std::string_view value, std::string& out) {
  ascii_letters(value, out);
  return !out.empty();
}

bool state(std::string_view value, std::string& out) {
  // Names are looked up with diacritics folded ("Québec" -> qc) and as the
  // plain a-z letters the rule keeps; a region with no code keeps those letters.
  unicode::folded_ascii_letters(value, out);
  auto code = geo::region_code(out);
  ascii_letters(value, out);
  if (!code) code = geo::region_code(out);
  if (code) out.assign(*code);
  return !out.empty();
}

bool zip(std::string_view value, std::string& out) {
  out.assign(value);
  unicode::erase_white_space(out);
  if (is_us_zip_plus_four(out)) {
    out.resize(5);
    return true;
  }
  // Whitespace, dashes and any other punctuation go; letters and digits stay.
  if (!unicode::lower_nfc(value, out, Keep::LettersMarksNumbers)) return false;
  return unicode::code_point_count(out) >= 2;
}

bool country(std::string_view value, std::string& out) {
  unicode::folded_ascii_letters(value, out);
  if (out.size() == 2 && geo::is_country_code(out)) return true;
  // English names and ISO codes first: they decide when another language
  // happens to call some other country the same.
  auto code = geo::country_code(out);
  if (!code) code = geo::country_code_in_any_language(value);
  if (!code) return false;
  out.assign(*code);
  return true;
}

// MADID and EXTERN_ID leave unhashed, exactly as given: a value longer than
// any real one would only make Meta refuse the whole batch, again and again.
constexpr std::size_t kMaxUnhashedIdCodePoints = 256;

bool mobile_advertiser_id(std::string_view value, std::string& out) {
  if (unicode::code_point_count(value) > kMaxUnhashedIdCodePoints) return false;
  if (!unicode::lower_nfc(unicode::trim(value), out, Keep::Everything)) return false;
  // The limit is on what is sent: lowercasing can lengthen a value ("İ" is
  // "i" and U+0307), and a sent value must pass its own normalization again.
  // A MADID is sent unhashed: a value that is already a SHA-256 is not one.
  return !out.empty() && unicode::code_point_count(out) <= kMaxUnhashedIdCodePoints &&
         !looks_like_sha256_hex(out);
}

bool extern_id(std::string_view value, std::string& out) {
  // Sent byte for byte as stored: Meta matches it only in the identical form.
  if (unicode::trim(value).empty() || unicode::code_point_count(value) > kMaxUnhashedIdCodePoints)
    return false;
  out.assign(value);
  return true;
}

}  // namespace connector::normalize
