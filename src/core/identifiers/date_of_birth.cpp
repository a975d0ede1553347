// Dates of birth. Meta takes the year, month and day as three keys (DOBY, DOBM,
// DOBD), each hashed on its own; a whole date normalizes to YYYYMMDD so that one
// column can feed all three. Years outside 1900..this year are not birth years.

#include <array>
#include <cstdio>
#include <ctime>
#include <optional>
#include <vector>

#include "identifiers/normalize.hpp"
#include "identifiers/unicode_text.hpp"

namespace connector::normalize {
namespace {

constexpr int kFirstBirthYear = 1900;

struct Date {
  int year;
  int month;
  int day;
};

int current_year() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  return utc.tm_year + 1900;
}

bool is_birth_year(int year) { return year >= kFirstBirthYear && year <= current_year(); }

int days_in_month(int year, int month) {
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[static_cast<std::size_t>(month - 1)];
}

// One run of digits or of letters in the value, lowercased.
struct Token {
  std::string text;
  bool digits;
};

// Splits on everything that is neither an ASCII letter nor a digit, and
// remembers whether the separators were dots (day-first European dates).
std::vector<Token> tokenize(std::string_view value, bool& dotted) {
  std::vector<Token> tokens;
  dotted = false;
  for (char c : value) {
    bool digit = c >= '0' && c <= '9';
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!digit && !letter) {
      if (c == '.') dotted = true;
      if (!tokens.empty() && !tokens.back().text.empty()) tokens.push_back({"", false});
      continue;
    }
    if (tokens.empty() || (!tokens.back().text.empty() && tokens.back().digits != digit))
      tokens.push_back({"", digit});
    tokens.back().digits = digit;
    tokens.back().text.push_back(letter ? static_cast<char>(c | 0x20) : c);
  }
  if (!tokens.empty() && tokens.back().text.empty()) tokens.pop_back();
  return tokens;
}

std::optional<int> number(const Token& token, std::size_t max_digits) {
  if (!token.digits || token.text.size() > max_digits) return std::nullopt;
  int value = 0;
  for (char c : token.text) value = value * 10 + (c - '0');
  return value;
}

// "jan", "january", "sept" ...: month names in English, as CRM exports write them.
std::optional<int> month_from_name(const Token& token) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "january", "february", "march",     "april",   "may",      "june",
      "july",    "august",   "september", "october", "november", "december"};
  if (token.digits || token.text.size() < 3) return std::nullopt;
  for (std::size_t i = 0; i < kMonths.size(); ++i)
    if (kMonths[i].substr(0, token.text.size()) == token.text) return static_cast<int>(i + 1);
  return std::nullopt;
}

std::optional<int> month_of(const Token& token) {
  if (auto by_name = month_from_name(token)) return by_name;
  return number(token, 2);
}

bool is_valid(const Date& date) {
  return is_birth_year(date.year) && date.month >= 1 && date.month <= 12 && date.day >= 1 &&
         date.day <= days_in_month(date.year, date.month);
}

// Reads a whole date: year first (ISO, with an optional time after it), year
// last, or YYYYMMDD. With the year last, two numbers that could each be the
// month are read in `order` (month first by default, as in Meta's own
// 2/16/1997 example; day first always when the separators are dots); when
// only one of them can be a month, it is the month.
std::optional<Date> parse_date(std::string_view value, DateOrder order) {
  bool dotted = false;
  std::vector<Token> tokens = tokenize(value, dotted);
  if (tokens.size() == 1 && tokens[0].digits && tokens[0].text.size() == 8) {
    const std::string& t = tokens[0].text;
    Date date{std::stoi(t.substr(0, 4)), std::stoi(t.substr(4, 2)), std::stoi(t.substr(6, 2))};
    if (is_valid(date)) return date;
    return std::nullopt;
  }
  if (tokens.size() < 3) return std::nullopt;
  std::optional<Date> date;
  if (tokens[0].digits && tokens[0].text.size() == 4) {
    auto month = month_of(tokens[1]);
    auto day = number(tokens[2], 2);
    if (month && day) date = Date{*number(tokens[0], 4), *month, *day};
  } else if (tokens.size() == 3 && tokens[2].digits && tokens[2].text.size() == 4) {
    int year = *number(tokens[2], 4);
    if (auto month = month_from_name(tokens[0])) {  // "February 16, 1997"
      if (auto day = number(tokens[1], 2)) date = Date{year, *month, *day};
    } else if (auto named = month_from_name(tokens[1])) {  // "16 Feb 1997"
      if (auto day = number(tokens[0], 2)) date = Date{year, *named, *day};
    } else {
      auto first = number(tokens[0], 2);
      auto second = number(tokens[1], 2);
      if (first && second) {
        bool day_first = *first > 12 || (*second <= 12 && (dotted || order == DateOrder::DayFirst));
        date = day_first ? Date{year, *second, *first} : Date{year, *first, *second};
      }
    }
  }
  if (date && is_valid(*date)) return date;
  return std::nullopt;
}

void write_two_digits(int value, std::string& out) {
  out.push_back(static_cast<char>('0' + value / 10));
  out.push_back(static_cast<char>('0' + value % 10));
}

// The value alone, trimmed, when it is one run of at most `max_digits` digits.
std::optional<int> lone_number(std::string_view value, std::size_t max_digits) {
  std::string_view trimmed = unicode::trim(value);
  if (trimmed.empty() || trimmed.size() > max_digits) return std::nullopt;
  int result = 0;
  for (char c : trimmed) {
    if (c < '0' || c > '9') return std::nullopt;
    result = result * 10 + (c - '0');
  }
  return result;
}

}  // namespace

bool date_of_birth(std::string_view value, DateOrder order, std::string& out) {
  auto date = parse_date(value, order);
  if (!date) return false;
  out = std::to_string(date->year);
  write_two_digits(date->month, out);
  write_two_digits(date->day, out);
  return true;
}

bool birth_year(std::string_view value, std::string& out) {
  auto year = lone_number(value, 4);
  if (!year) {
    // Either reading of a whole date has the same year.
    auto date = parse_date(value, DateOrder::MonthFirst);
    if (!date) return false;
    year = date->year;
  }
  if (!is_birth_year(*year)) return false;
  out = std::to_string(*year);
  return true;
}

bool birth_month(std::string_view value, DateOrder order, std::string& out) {
  std::optional<int> month = lone_number(value, 2);
  if (!month) {
    bool dotted = false;
    auto tokens = tokenize(value, dotted);
    if (tokens.size() == 1) month = month_from_name(tokens[0]);
  }
  if (!month) {
    auto date = parse_date(value, order);
    if (!date) return false;
    month = date->month;
  }
  if (*month < 1 || *month > 12) return false;
  out.clear();
  write_two_digits(*month, out);
  return true;
}

bool birth_day(std::string_view value, DateOrder order, std::string& out) {
  std::optional<int> day = lone_number(value, 2);
  if (!day) {
    auto date = parse_date(value, order);
    if (!date) return false;
    day = date->day;
  }
  if (*day < 1 || *day > 31) return false;
  out.clear();
  write_two_digits(*day, out);
  return true;
}

bool date_of_birth(std::string_view value, std::string& out) {
  return date_of_birth(value, DateOrder::MonthFirst, out);
}

bool birth_month(std::string_view value, std::string& out) {
  return birth_month(value, DateOrder::MonthFirst, out);
}

bool birth_day(std::string_view value, std::string& out) {
  return birth_day(value, DateOrder::MonthFirst, out);
}

}  // namespace connector::normalize
