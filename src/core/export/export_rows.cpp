#include "export/export_rows.hpp"

#include "identifiers/identifier.hpp"
#include "identifiers/sha256_hex.hpp"
#include "identifiers/unicode_text.hpp"

namespace connector {
namespace {

// The value of a lowercase hex digit (looks_like_sha256_hex checked it is one).
int hex_value(char digit) { return digit <= '9' ? digit - '0' : digit - 'a' + 10; }

}  // namespace

const char* skip_reason_name(SkipReason reason) noexcept {
  switch (reason) {
    case SkipReason::NoIdentifier:
      return "no_identifier";
    case SkipReason::InvalidEmail:
      return "invalid_email";
    case SkipReason::InvalidPhone:
      return "invalid_phone";
    case SkipReason::IncompleteNameAndAddress:
      return "incomplete_name_and_address";
    case SkipReason::ValueTooLong:
      return "value_too_long";
    case SkipReason::NoEmail:
      return "no_email";
    case SkipReason::NoPhone:
      return "no_phone";
    case SkipReason::UnknownCountry:
      return "unknown_country";
    case SkipReason::NoNameAndAddress:
      return "no_name_and_address";
    case SkipReason::Duplicate:
      return "duplicate";
  }
  return "unknown";
}

RowEncoder::RowEncoder(const ExportMapping& mapping)
    : mapping_(mapping),
      email_(cell_of("EMAIL")),
      phone_(cell_of("PHONE")),
      first_name_(cell_of("FN")),
      last_name_(cell_of("LN")),
      zip_(cell_of("ZIP")),
      city_(cell_of("CT")),
      state_(cell_of("ST")),
      country_(cell_of("COUNTRY")) {
  for (std::size_t i = 0; i < mapping.columns.size(); ++i)
    if (mapping.columns[i].key == Key::Country) country_value_ = i;
}

std::size_t RowEncoder::cell_of(std::string_view key) const {
  for (std::size_t i = 0; i < mapping_.schema.size(); ++i)
    if (mapping_.schema[i] == key) return i;
  return std::string::npos;
}

std::optional<SkipReason> RowEncoder::encode(
    const std::vector<std::optional<std::string_view>>& values, std::vector<std::string>& cells) {
  // Cleared in place: each cell keeps its capacity from the previous row.
  cells.resize(mapping_.schema.size());
  for (std::string& cell : cells) cell.clear();
  for (const std::optional<std::string_view>& value : values)
    if (value && value->size() > kMaxValueBytes) return SkipReason::ValueTooLong;
  given_.assign(cells.size(), false);
  bool phone_country_unknown = false;
  std::size_t cell = 0;
  for (std::size_t i = 0; i < mapping_.columns.size(); ++i) {
    const MappedColumn& column = mapping_.columns[i];
    const std::optional<std::string_view>& value = values[i];
    if (column.key == Key::DateOfBirth) {
      // YYYYMMDD, sent as three separately hashed parts.
      if (value && normalize_identifier(Key::DateOfBirth, *value, column.date_order, scratch_)) {
        for (auto [offset, length] : {std::pair{0, 4}, {4, 2}, {6, 2}})
          cells[cell++].assign(scratch_, offset, length);
      } else {
        cell += 3;
      }
      continue;
    }
    std::string& out = cells[cell];
    given_[cell++] = value && !unicode::trim(*value).empty();
    if (!value) continue;
    if (column.prehashed) {
      if (looks_like_sha256_hex(*value))
        for (std::size_t at = 0; at < value->size(); at += 2)
          out.push_back(static_cast<char>(hex_value((*value)[at]) << 4 | hex_value((*value)[at + 1])));
      else
        ++rejected_prehashed_;
    } else if (column.key == Key::Phone && country_value_ && values[*country_value_]) {
      PhoneOutcome outcome = normalize_phone(*value, *values[*country_value_], out);
      if (outcome != PhoneOutcome::Valid) out.clear();
      phone_country_unknown = outcome == PhoneOutcome::UnknownCountry;
    } else if (!normalize_identifier(column.key, *value, column.date_order, out)) {
      out.clear();
    }
  }

  auto valid = [&cells](std::size_t at) { return at != std::string::npos && !cells[at].empty(); };
  auto given = [this](std::size_t at) { return at != std::string::npos && given_[at]; };
  bool email = valid(email_);
  bool phone = valid(phone_);
  bool name_and_address = valid(first_name_) && valid(last_name_) &&
                          (valid(zip_) || valid(city_) || valid(state_) || valid(country_));
  // A name is what makes a row a try at name and address: COUNTRY alone is not.
  bool name_given = given(first_name_) || given(last_name_);
  auto email_skip = [&] { return given(email_) ? SkipReason::InvalidEmail : SkipReason::NoEmail; };
  auto phone_skip = [&] {
    if (phone_country_unknown) return SkipReason::UnknownCountry;
    return given(phone_) ? SkipReason::InvalidPhone : SkipReason::NoPhone;
  };
  switch (mapping_.key_identifier) {
    case KeyIdentifier::Any:
      if (email || phone || name_and_address) return std::nullopt;
      if (given(email_)) return SkipReason::InvalidEmail;
      if (given(phone_)) return phone_skip();
      if (name_given) return SkipReason::IncompleteNameAndAddress;
      return SkipReason::NoIdentifier;
    case KeyIdentifier::Email:
      if (email) return std::nullopt;
      return email_skip();
    case KeyIdentifier::Phone:
      if (phone) return std::nullopt;
      return phone_skip();
    case KeyIdentifier::NameAndAddress:
      if (name_and_address) return std::nullopt;
      return name_given ? SkipReason::IncompleteNameAndAddress : SkipReason::NoNameAndAddress;
  }
  return SkipReason::NoIdentifier;
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (byte < 0x20) {
      out.append("\\u00");
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0x0F]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

// Room for a body of hashed cells: 64 hex digits, two quotes and a comma
// each, a row's brackets and comma, and the session object at the end.
constexpr std::size_t kHashedCellBytes = 67;
constexpr std::size_t kRowBytes = 3;
constexpr std::size_t kSessionBytes = 160;

PayloadWriter::PayloadWriter(const std::vector<std::string>& schema, std::size_t expected_rows) {
  prefix_ = "{\"payload\":{\"schema\":[";
  for (std::size_t i = 0; i < schema.size(); ++i) {
    if (i > 0) prefix_.push_back(',');
    append_json_string(prefix_, schema[i]);
  }
  prefix_ += "],\"is_raw\":true,\"data\":[";
  capacity_ = prefix_.size() + expected_rows * (schema.size() * kHashedCellBytes + kRowBytes) +
              kSessionBytes;
  body_.reserve(capacity_);
  body_ = prefix_;
}

std::string PayloadWriter::finish(std::int64_t session_id, std::uint64_t batch_seq, bool last_batch,
                                  std::int64_t estimated_total) {
  body_ += "]},\"session\":{\"session_id\":";
  body_ += std::to_string(session_id);
  body_ += ",\"batch_seq\":";
  body_ += std::to_string(batch_seq);
  body_ += ",\"last_batch_flag\":";
  body_ += last_batch ? "true" : "false";
  body_ += ",\"estimated_num_total\":";
  body_ += std::to_string(estimated_total);
  body_ += "}}";
  std::string body = std::move(body_);
  body_.clear();
  body_.reserve(capacity_);
  body_ = prefix_;
  rows_ = 0;
  return body;
}

}  // namespace connector
