#include "export_rows.hpp"

#include "identifier.hpp"
#include "sha256_hex.hpp"

namespace connector {
namespace {

bool valid(const std::vector<std::string>& cells, const std::vector<std::string>& schema,
           std::string_view key) {
  for (std::size_t i = 0; i < schema.size(); ++i)
    if (schema[i] == key) return !cells[i].empty();
  return false;
}

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
  }
  return "unknown";
}

RowEncoder::RowEncoder(const ExportMapping& mapping) : mapping_(mapping) {
  for (std::size_t i = 0; i < mapping.columns.size(); ++i)
    if (mapping.columns[i].key == Key::Country) country_value_ = i;
}

std::optional<SkipReason> RowEncoder::encode(
    const std::vector<std::optional<std::string_view>>& values, std::vector<std::string>& cells) {
  cells.assign(mapping_.schema.size(), std::string());
  std::size_t cell = 0;
  for (std::size_t i = 0; i < mapping_.columns.size(); ++i) {
    const MappedColumn& column = mapping_.columns[i];
    const std::optional<std::string_view>& value = values[i];
    if (column.key == Key::DateOfBirth) {
      // YYYYMMDD, sent as three separately hashed parts.
      if (value && normalize_identifier(Key::DateOfBirth, *value, scratch_)) {
        char hex[sha256_hex_length];
        for (auto [offset, length] : {std::pair{0, 4}, {4, 2}, {6, 2}}) {
          sha256_hex(std::string_view(scratch_).substr(offset, length), hex);
          cells[cell++].assign(hex, sha256_hex_length);
        }
      } else {
        cell += 3;
      }
      continue;
    }
    std::string& out = cells[cell++];
    if (!value) continue;
    if (column.prehashed) {
      if (looks_like_sha256_hex(*value))
        out.assign(*value);
      else
        ++rejected_prehashed_;
    } else if (column.key == Key::Phone && country_value_ && values[*country_value_]) {
      if (!hash_phone(*value, *values[*country_value_], out)) out.clear();
    } else if (!hash_identifier(column.key, *value, out)) {
      out.clear();
    }
  }

  const auto& schema = mapping_.schema;
  bool email = valid(cells, schema, "EMAIL");
  bool phone = valid(cells, schema, "PHONE");
  bool name_and_address = valid(cells, schema, "FN") && valid(cells, schema, "LN") &&
                          (valid(cells, schema, "ZIP") || valid(cells, schema, "CT") ||
                           valid(cells, schema, "ST") || valid(cells, schema, "COUNTRY"));
  switch (mapping_.key_identifier) {
    case KeyIdentifier::Any:
      if (email || phone || name_and_address) return std::nullopt;
      return SkipReason::NoIdentifier;
    case KeyIdentifier::Email:
      if (email) return std::nullopt;
      return SkipReason::InvalidEmail;
    case KeyIdentifier::Phone:
      if (phone) return std::nullopt;
      return SkipReason::InvalidPhone;
    case KeyIdentifier::NameAndAddress:
      if (name_and_address) return std::nullopt;
      return SkipReason::IncompleteNameAndAddress;
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

PayloadWriter::PayloadWriter(const std::vector<std::string>& schema) {
  prefix_ = "{\"payload\":{\"schema\":[";
  for (std::size_t i = 0; i < schema.size(); ++i) {
    if (i > 0) prefix_.push_back(',');
    append_json_string(prefix_, schema[i]);
  }
  prefix_ += "],\"is_raw\":true,\"data\":[";
}

std::string row_json(const std::vector<std::string>& cells) {
  std::string row = "[";
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) row.push_back(',');
    append_json_string(row, cells[i]);
  }
  row.push_back(']');
  return row;
}

void PayloadWriter::add_row(const std::vector<std::string>& cells) {
  add_row_json(row_json(cells));
}

void PayloadWriter::add_row_json(std::string_view row) {
  if (rows_ > 0) data_.push_back(',');
  data_ += row;
  ++rows_;
}

std::string PayloadWriter::finish(std::int64_t session_id, std::uint64_t batch_seq, bool last_batch,
                                  std::int64_t estimated_total) {
  std::string body;
  body.reserve(prefix_.size() + data_.size() + 128);
  body += prefix_;
  body += data_;
  body += "]},\"session\":{\"session_id\":" + std::to_string(session_id) +
          ",\"batch_seq\":" + std::to_string(batch_seq) +
          ",\"last_batch_flag\":" + (last_batch ? "true" : "false") +
          ",\"estimated_num_total\":" + std::to_string(estimated_total) + "}}";
  data_.clear();
  rows_ = 0;
  return body;
}

}  // namespace connector
