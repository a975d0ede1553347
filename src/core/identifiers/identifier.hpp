// Normalizing and hashing one identifier value: what fb_normalize() and
// fb_hash() return, and what an export puts in a payload cell.
#pragma once

#include <string>
#include <string_view>

#include "identifiers/keys.hpp"
#include "identifiers/normalize.hpp"

namespace connector {

// The normalized value, or false when `value` (UTF-8) cannot be normalized.
bool normalize_identifier(Key key, std::string_view value, std::string& out);

// The cell Meta receives: the lowercase hex SHA-256 of the normalized value for
// hashed keys, the normalized value itself for MADID and EXTERN_ID; false when
// the value cannot be normalized.
bool hash_identifier(Key key, std::string_view value, std::string& out);

// DOB, DOBM and DOBD with whole dates read in `order`; any other key as
// normalize_identifier.
using normalize::DateOrder;
bool normalize_identifier(Key key, std::string_view value, DateOrder order, std::string& out);

// "MDY" (month first) or "DMY" (day first), in any case; throws InvalidArgument.
DateOrder parse_date_order(std::string_view text);

// PHONE with a default country (code or name) for national numbers; an empty
// one reads the value as PHONE alone does. UnknownCountry: the default country
// is given but not known, so a national number cannot be read.
using normalize::PhoneOutcome;
PhoneOutcome normalize_phone(std::string_view value, std::string_view default_country,
                             std::string& out);
bool hash_phone(std::string_view value, std::string_view default_country, std::string& out);

}  // namespace connector
