// Unicode handling for the normalizers, independent of any locale or database
// collation, so that a normalized value is the same in every database and the
// SQL functions can honestly be IMMUTABLE. Backed by utf8proc's Unicode tables.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace connector::unicode {

bool is_ascii(std::string_view text) noexcept;
bool is_valid_utf8(std::string_view text) noexcept;

// `text` without leading and trailing Unicode White_Space (NBSP included).
// `text` must be valid UTF-8.
std::string_view trim(std::string_view text) noexcept;

// True when `text` holds any Unicode White_Space character.
bool has_white_space(std::string_view text) noexcept;

// Removes every Unicode White_Space character from valid UTF-8 `text`.
void erase_white_space(std::string& text);

enum class Keep { Everything, LettersMarksNumbers };

// Writes the NFC form of the full, locale-independent lowercase of `text`
// ("VALÉRY" -> "valéry", "İ" -> "i̇", final sigma -> "ς"), optionally keeping
// only letters, marks and numbers. Returns false when `text` is not valid UTF-8.
bool lower_nfc(std::string_view text, std::string& out, Keep keep);

// Writes the ASCII letters a-z of `text`, lowercased, after removing diacritics
// and compatibility forms ("Québec" -> "quebec", "Ｔｏｋｙｏ" -> "tokyo"); every
// other character is dropped. Used to look names up in tables of ASCII names.
void folded_ascii_letters(std::string_view text, std::string& out);

// Writes the letters of `text` in any script, case-folded, without diacritics
// and compatibility forms ("Österreich" -> "osterreich", "Россия" ->
// "россия"); everything else is dropped. A lookup key for names written in
// any language, never a value to send.
void folded_letters(std::string_view text, std::string& out);

// Number of code points in valid UTF-8 `text`.
std::size_t code_point_count(std::string_view text) noexcept;

// Bytes taken by the first code point of valid, non-empty UTF-8 `text`.
std::size_t first_code_point_length(std::string_view text) noexcept;

}  // namespace connector::unicode
