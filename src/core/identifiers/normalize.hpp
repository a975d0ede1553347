// Per-key normalizers, following docs/graph-api.md section 7.
// Each takes the raw value (UTF-8) and writes the normalized value, or returns
// false when the value cannot be normalized to a valid one (the caller then
// sends an empty cell, never a hash of garbage or of "").
#pragma once

#include <string>
#include <string_view>

namespace connector::normalize {

bool email(std::string_view value, std::string& out);
bool gender(std::string_view value, std::string& out);
bool first_or_last_name(std::string_view value, std::string& out);
bool first_initial(std::string_view value, std::string& out);
bool city(std::string_view value, std::string& out);
bool state(std::string_view value, std::string& out);
bool zip(std::string_view value, std::string& out);
bool country(std::string_view value, std::string& out);
bool mobile_advertiser_id(std::string_view value, std::string& out);
bool extern_id(std::string_view value, std::string& out);

// Dates of birth (date_of_birth.cpp). A whole date ("1997-02-16",
// "2/16/1997", "16.02.1997", "19970216", "February 16, 1997") gives YYYYMMDD;
// the part keys take either the part alone or a whole date. A date like
// 04/01/1950 is read in the order given: month first (the default, Meta's
// example) or day first; never the other way round.
enum class DateOrder { MonthFirst, DayFirst };
bool date_of_birth(std::string_view value, DateOrder order, std::string& out);
bool birth_month(std::string_view value, DateOrder order, std::string& out);
bool birth_day(std::string_view value, DateOrder order, std::string& out);
// The key table's normalizers: month first.
bool date_of_birth(std::string_view value, std::string& out);
bool birth_year(std::string_view value, std::string& out);
bool birth_month(std::string_view value, std::string& out);
bool birth_day(std::string_view value, std::string& out);

// Phone numbers (phone.cpp): digits only, without leading zeros, with the
// country calling code, and a possible length for that code. Without a
// default country, or written with "+" or "00", the digits are read as an
// international number. `default_country` (a country code or name) turns a
// national number into an international one; when it is given but not
// known, a national number is not read at all.
bool phone(std::string_view value, std::string& out);
enum class PhoneOutcome { Valid, Invalid, UnknownCountry };
PhoneOutcome phone_for_country(std::string_view value, std::string_view default_country,
                               std::string& out);

}  // namespace connector::normalize
