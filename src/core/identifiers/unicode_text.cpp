// Unicode normalization (NFC), lowercasing and category filters with utf8proc.
// ASCII input, by far the common case, takes a fast path that never calls it.

#include "identifiers/unicode_text.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace connector::unicode {
namespace {

using CodePoints = std::vector<utf8proc_int32_t>;

// Unicode's White_Space property: a small, stable set.
bool is_white_space_code_point(utf8proc_int32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

bool is_letter_mark_or_number(utf8proc_int32_t cp) {
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

bool is_mark(utf8proc_int32_t cp) {
  auto category = utf8proc_category(cp);
  return category == UTF8PROC_CATEGORY_MN || category == UTF8PROC_CATEGORY_MC ||
         category == UTF8PROC_CATEGORY_ME;
}

bool is_letter(utf8proc_int32_t cp) {
  auto category = utf8proc_category(cp);
  return category >= UTF8PROC_CATEGORY_LU && category <= UTF8PROC_CATEGORY_LO;
}

// Decodes `text` into code points with `options` applied; false on invalid UTF-8.
bool decompose(std::string_view text, CodePoints& points, utf8proc_option_t options) {
  auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  auto length = static_cast<utf8proc_ssize_t>(text.size());
  if (points.size() < text.size() + 8) points.resize(text.size() + 8);
  for (;;) {
    utf8proc_ssize_t count = utf8proc_decompose(
        bytes, length, points.data(), static_cast<utf8proc_ssize_t>(points.size()), options);
    if (count < 0) return false;
    if (static_cast<std::size_t>(count) <= points.size()) {
      points.resize(static_cast<std::size_t>(count));
      return true;
    }
    points.resize(static_cast<std::size_t>(count));
  }
}

void append_utf8(const CodePoints& points, std::size_t count, std::string& out) {
  out.clear();
  out.reserve(count * 2);
  utf8proc_uint8_t encoded[4];
  for (std::size_t i = 0; i < count; ++i) {
    auto length = utf8proc_encode_char(points[i], encoded);
    out.append(reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(length));
  }
}

// Greek capital sigma lowercases to final sigma at the end of a word, as in
// Unicode's Final_Sigma condition (and JavaScript's and Python's lower()).
bool is_final_sigma(const CodePoints& points, std::size_t at) {
  std::size_t before = at;
  while (before > 0 && is_mark(points[before - 1])) --before;
  if (before == 0 || !is_letter(points[before - 1])) return false;
  std::size_t after = at + 1;
  while (after < points.size() && is_mark(points[after])) ++after;
  return after == points.size() || !is_letter(points[after]);
}

inline bool is_ascii_white_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// Trims Unicode White_Space from both ends of valid UTF-8.
std::string_view trim_unicode(std::string_view text) noexcept {
  auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end) {
    utf8proc_int32_t cp;
    auto length = utf8proc_iterate(bytes + begin, static_cast<utf8proc_ssize_t>(end - begin), &cp);
    if (length <= 0 || !is_white_space_code_point(cp)) break;
    begin += static_cast<std::size_t>(length);
  }
  while (end > begin) {
    std::size_t start = end - 1;  // step back to the lead byte of the last code point
    while (start > begin && (bytes[start] & 0xC0) == 0x80) --start;
    utf8proc_int32_t cp;
    auto length = utf8proc_iterate(bytes + start, static_cast<utf8proc_ssize_t>(end - start), &cp);
    if (length <= 0 || !is_white_space_code_point(cp)) break;
    end = start;
  }
  return text.substr(begin, end - begin);
}

// Reused between calls so that the common short value costs no allocation;
// very long values get their own buffer so the process does not keep it.
constexpr std::size_t kReusedBufferLimit = 4096;

CodePoints& scratch_for(std::size_t size, CodePoints& local) {
  thread_local CodePoints reused;
  return size <= kReusedBufferLimit ? reused : local;
}

}  // namespace

bool is_ascii(std::string_view text) noexcept {
  std::size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, text.data() + i, sizeof word);
    if (word & 0x8080808080808080ULL) return false;
  }
  for (; i < text.size(); ++i)
    if (static_cast<unsigned char>(text[i]) & 0x80) return false;
  return true;
}

bool is_valid_utf8(std::string_view text) noexcept {
  auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  auto remaining = static_cast<utf8proc_ssize_t>(text.size());
  while (remaining > 0) {
    if (*bytes < 0x80) {
      ++bytes;
      --remaining;
      continue;
    }
    utf8proc_int32_t cp;
    utf8proc_ssize_t length = utf8proc_iterate(bytes, remaining, &cp);
    if (length <= 0 || cp < 0) return false;
    bytes += length;
    remaining -= length;
  }
  return true;
}

std::string_view trim(std::string_view text) noexcept {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && is_ascii_white_space(text[begin])) ++begin;
  while (end > begin && is_ascii_white_space(text[end - 1])) --end;
  text = text.substr(begin, end - begin);
  if (text.empty() || (static_cast<unsigned char>(text.front()) < 0x80 &&
                       static_cast<unsigned char>(text.back()) < 0x80))
    return text;
  return trim_unicode(text);
}

bool has_white_space(std::string_view text) noexcept {
  if (is_ascii(text))
    return std::any_of(text.begin(), text.end(), [](char c) { return is_ascii_white_space(c); });
  auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  std::size_t at = 0;
  while (at < text.size()) {
    utf8proc_int32_t cp;
    auto length =
        utf8proc_iterate(bytes + at, static_cast<utf8proc_ssize_t>(text.size() - at), &cp);
    if (length <= 0) return false;
    if (is_white_space_code_point(cp)) return true;
    at += static_cast<std::size_t>(length);
  }
  return false;
}

void erase_white_space(std::string& text) {
  auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  std::size_t kept = 0;
  std::size_t at = 0;
  while (at < text.size()) {
    utf8proc_int32_t cp;
    auto length =
        utf8proc_iterate(bytes + at, static_cast<utf8proc_ssize_t>(text.size() - at), &cp);
    std::size_t step = length > 0 ? static_cast<std::size_t>(length) : 1;
    if (length <= 0 || !is_white_space_code_point(cp))
      for (std::size_t i = 0; i < step; ++i) text[kept++] = text[at + i];
    at += step;
  }
  text.resize(kept);
}

bool lower_nfc(std::string_view text, std::string& out, Keep keep) {
  if (is_ascii(text)) {
    out.resize(text.size());
    std::size_t kept = 0;
    for (char c : text) {
      char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
      bool alnum = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9');
      if (keep == Keep::Everything || alnum) out[kept++] = lower;
    }
    out.resize(kept);
    return true;
  }
  // Lowercasing the canonical decomposition gives the full lowercase: "İ"
  // (I + U+0307 decomposed) becomes "i̇". Filtering can then bring combining
  // marks together out of canonical order, so the result is normalized again.
  CodePoints local;
  CodePoints& points = scratch_for(text.size(), local);
  auto decomposition = static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | UTF8PROC_STABLE);
  if (!decompose(text, points, decomposition)) return false;
  std::string lowered;
  lowered.reserve(text.size());
  utf8proc_uint8_t encoded[4];
  for (std::size_t i = 0; i < points.size(); ++i) {
    utf8proc_int32_t cp = points[i];
    if (keep == Keep::LettersMarksNumbers && !is_letter_mark_or_number(cp)) continue;
    cp = (cp == 0x03A3 && is_final_sigma(points, i)) ? 0x03C2 : utf8proc_tolower(cp);
    lowered.append(reinterpret_cast<const char*>(encoded),
                   static_cast<std::size_t>(utf8proc_encode_char(cp, encoded)));
  }
  if (!decompose(lowered, points, decomposition)) return false;
  utf8proc_ssize_t composed =
      utf8proc_normalize_utf32(points.data(), static_cast<utf8proc_ssize_t>(points.size()),
                               static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_STABLE));
  if (composed < 0) return false;
  append_utf8(points, static_cast<std::size_t>(composed), out);
  return true;
}

// Calls keep(cp) for each code point of `text` case-folded, without marks
// and compatibility forms; nothing for text that is not valid UTF-8.
template <typename Keep>
void for_each_folded(std::string_view text, Keep&& keep) {
  if (is_ascii(text)) {
    for (char c : text) keep(static_cast<utf8proc_int32_t>(c >= 'A' && c <= 'Z' ? c | 0x20 : c));
    return;
  }
  CodePoints local;
  CodePoints& points = scratch_for(text.size(), local);
  auto options = static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT |
                                                UTF8PROC_STRIPMARK | UTF8PROC_CASEFOLD);
  if (!decompose(text, points, options)) return;
  for (auto cp : points) keep(cp);
}

void folded_ascii_letters(std::string_view text, std::string& out) {
  out.clear();
  for_each_folded(text, [&out](utf8proc_int32_t cp) {
    if (cp >= 'a' && cp <= 'z') out.push_back(static_cast<char>(cp));
  });
}

void folded_letters(std::string_view text, std::string& out) {
  out.clear();
  utf8proc_uint8_t encoded[4];
  for_each_folded(text, [&](utf8proc_int32_t cp) {
    if (is_letter(cp))
      out.append(reinterpret_cast<const char*>(encoded),
                 static_cast<std::size_t>(utf8proc_encode_char(cp, encoded)));
  });
}

std::size_t code_point_count(std::string_view text) noexcept {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;  // not a continuation byte
  }));
}

std::size_t first_code_point_length(std::string_view text) noexcept {
  utf8proc_int32_t cp;
  auto length = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                 static_cast<utf8proc_ssize_t>(text.size()), &cp);
  return length > 0 ? static_cast<std::size_t>(length) : 0;
}

}  // namespace connector::unicode
