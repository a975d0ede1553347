// Country names in every language CLDR has, as ICU displays them: the names
// customers write in their own language ("Deutschland", "España", "Österreich",
// "日本", "Россия"), for COUNTRY and for the default country of PHONE.
#pragma once

#include <optional>
#include <string_view>

namespace connector::geo {

// The lowercase ISO 3166-1 alpha-2 code of the one country that some language
// calls `value` (UTF-8; case, diacritics, spaces and punctuation ignored), or
// nullopt when none does or when languages disagree on which country it is
// ("Kongo" is one Congo in one language and the other in another).
//
// The table is built from ICU on the first call in a process (some 50,000
// names, about a tenth of a second) and searched after that; the English and
// ISO tables of geo_names.hpp answer first and need no table built.
std::optional<std::string_view> country_code_in_any_language(std::string_view value);

}  // namespace connector::geo
