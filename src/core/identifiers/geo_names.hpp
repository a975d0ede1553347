// Country and US/Canadian region names as customers type them, mapped to the
// codes Meta matches on. Meta hashes "united states" and "us" differently and
// only the code matches, so COUNTRY and ST must be reduced to codes before
// hashing; see docs/graph-api.md section 7.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace connector::geo {

// `squashed` is lowercase ASCII letters a-z only (caller removed everything else, accents already
// folded to ASCII). Returns the lowercase ISO 3166-1 alpha-2 code for: a valid alpha-2 code itself
// ("us" -> "us"), an ISO alpha-3 code ("usa","gbr","deu"), an English short name or official name
// ("unitedstates","unitedstatesofamerica","germany","cotedivoire","korearepublicof","southkorea"),
// and common aliases ("uk","greatbritain","england","scotland","wales","northernireland" -> "gb";
// "america","us a" squashed "usa" -> "us"; "holland","thenetherlands" -> "nl"; "russia" -> "ru";
// "czechia","czechrepublic" -> "cz"; "turkey","turkiye" -> "tr"; "ivorycoast" -> "ci"; "burma" ->
// "mm"; "vietnam" -> "vn"; "laos","iran","syria","bolivia","venezuela","tanzania","moldova",
// "macedonia","northmacedonia","eswatini","swaziland","capeverde","caboverde","vaticancity","holysee","palestine",
// "taiwan", "hongkong","macau","macao", "uae", "ksa"...).
std::optional<std::string_view> country_code(std::string_view squashed) noexcept;

// true when `two_letters` (lowercase) is an officially assigned ISO 3166-1 alpha-2 code (all 249 of
// them; not "uk", not "eu").
bool is_country_code(std::string_view two_letters) noexcept;

// US states, DC, US territories (PR, GU, VI, AS, MP, UM) and military "states" (AA, AE, AP), and
// Canadian provinces and territories: full English names squashed
// ("california","newyork","districtofcolumbia","washingtondc","puertorico","britishcolumbia",
// "newfoundlandandlabrador","newfoundland","quebec","yukon","yukonterritory","northwestterritories","nunavut","princeedwardisland",
// ...)
// -> the 2-letter lowercase postal code. The 2-letter codes themselves are NOT looked up here (the
// caller keeps them).
std::optional<std::string_view> region_code(std::string_view squashed) noexcept;

// Exposed only so the unit test can audit the raw tables; not for callers.
namespace detail {

struct Entry {
  std::string_view name;
  std::string_view code;
};

struct Table {
  const Entry* entries;
  std::size_t size;
};

// Every table is sorted by `name` with no duplicate names. In the alpha-2
// table name == code; in the others `code` is the value returned for `name`.
Table alpha2_table() noexcept;
Table alpha3_table() noexcept;
Table country_name_table() noexcept;
Table region_name_table() noexcept;

}  // namespace detail

}  // namespace connector::geo
