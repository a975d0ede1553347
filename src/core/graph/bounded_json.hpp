// Every JSON document the Graph API (or whatever answers in its place) sends,
// and every mapping a user writes, is parsed through here: one nested deeper
// than a few dozen levels is refused before parsing, so that a hostile or
// broken endpoint cannot exhaust the stack of a database backend (serializing
// and comparing a document recurse). Answers are already capped in size where
// they are received (kMaxGraphResponseBytes).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string_view>

namespace connector {

inline constexpr std::size_t kMaxJsonDepth = 64;

// The parsed document, or a discarded value (is_discarded()) when the text is
// not JSON or nests deeper than kMaxJsonDepth.
nlohmann::json parse_bounded_json(std::string_view text);

}  // namespace connector
