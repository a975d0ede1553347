#include "export/members.hpp"

#include "errors.hpp"
#include "export/export_rows.hpp"
#include "graph/bounded_json.hpp"
#include "identifiers/sha256_hex.hpp"

namespace connector {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// Lengths are LEB128 varints: one byte for any identifier under 128 bytes.
void append_length(std::string& out, std::size_t length) {
  while (length >= 0x80) {
    out.push_back(static_cast<char>((length & 0x7F) | 0x80));
    length >>= 7;
  }
  out.push_back(static_cast<char>(length));
}

// Reads the length at `at`; throws when the data ends first.
std::size_t read_length(std::string_view data, std::size_t& at, const char* what) {
  std::size_t length = 0;
  for (int shift = 0;; shift += 7) {
    if (at >= data.size() || shift > 28) throw InvalidArgument(std::string("malformed ") + what);
    auto byte = static_cast<unsigned char>(data[at++]);
    length |= static_cast<std::size_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return length;
  }
}

// Reads a length at `at` and the bytes it counts; throws when they overrun.
std::string_view read_field(std::string_view data, std::size_t& at, const char* what) {
  std::size_t length = read_length(data, at, what);
  if (length > data.size() - at) throw InvalidArgument(std::string("malformed ") + what);
  std::string_view field = data.substr(at, length);
  at += length;
  return field;
}

void append_hex(std::string& out, const unsigned char* bytes, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    out.push_back(kHexDigits[bytes[i] >> 4]);
    out.push_back(kHexDigits[bytes[i] & 0x0F]);
  }
}

}  // namespace

MemberFormat::MemberFormat(const ExportMapping& mapping) : schema_(mapping.schema) {
  for (const MappedColumn& column : mapping.columns) {
    if (column.key == Key::DateOfBirth)
      forms_.insert(forms_.end(), 3, CellForm::Hashed);  // DOBY, DOBM, DOBD
    else if (column.prehashed)
      forms_.push_back(CellForm::Digest);
    else
      forms_.push_back(key_spec(column.key).hashed ? CellForm::Hashed : CellForm::Plain);
  }
  description_ = "{\"schema\":[";
  for (std::size_t i = 0; i < mapping.schema.size(); ++i) {
    if (i > 0) description_ += ",";
    append_json_string(description_, mapping.schema[i]);
  }
  description_ += "],\"forms\":\"";
  for (CellForm form : forms_)
    description_ += form == CellForm::Hashed ? 'h' : form == CellForm::Digest ? 'd' : 'p';
  description_ += "\"}";
}

MemberFormat MemberFormat::from_description(std::string_view description) {
  auto parsed = parse_bounded_json(description);
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("schema") ||
      !parsed["schema"].is_array() || !parsed.contains("forms") || !parsed["forms"].is_string() ||
      parsed["schema"].size() != parsed["forms"].get<std::string>().size())
    throw InvalidArgument("malformed member format");
  MemberFormat format;
  std::string forms = parsed["forms"].get<std::string>();
  for (std::size_t i = 0; i < forms.size(); ++i) {
    if (!parsed["schema"][i].is_string()) throw InvalidArgument("malformed member format");
    format.schema_.push_back(parsed["schema"][i].get<std::string>());
    switch (forms[i]) {
      case 'h':
        format.forms_.push_back(CellForm::Hashed);
        break;
      case 'd':
        format.forms_.push_back(CellForm::Digest);
        break;
      case 'p':
        format.forms_.push_back(CellForm::Plain);
        break;
      default:
        throw InvalidArgument("malformed member format");
    }
  }
  format.description_ = std::string(description);
  return format;
}

void MemberFormat::encode(const std::vector<std::string>& cells, std::string& out) const {
  out.clear();
  for (const std::string& cell : cells) {
    append_length(out, cell.size());
    out += cell;
  }
}

void MemberFormat::append_row_json(std::string_view member, std::string& out) const {
  out.push_back('[');
  std::size_t at = 0;
  for (std::size_t i = 0; i < forms_.size(); ++i) {
    std::string_view cell = read_field(member, at, "audience member");
    if (i > 0) out.push_back(',');
    if (cell.empty()) {
      out += "\"\"";
      continue;
    }
    switch (forms_[i]) {
      case CellForm::Hashed: {
        char hex[sha256_hex_length];
        sha256_hex(cell, hex);
        out.push_back('"');
        out.append(hex, sha256_hex_length);
        out.push_back('"');
        break;
      }
      case CellForm::Digest:
        if (cell.size() != sha256_length) throw InvalidArgument("malformed audience member");
        out.push_back('"');
        append_hex(out, reinterpret_cast<const unsigned char*>(cell.data()), cell.size());
        out.push_back('"');
        break;
      case CellForm::Plain:
        append_json_string(out, cell);
        break;
    }
  }
  if (at != member.size()) throw InvalidArgument("malformed audience member");
  out.push_back(']');
}

SourceRecords::SourceRecords(const ExportMapping& mapping) : columns_(mapping.columns.size()) {
  salt_ = "connector source v" + std::to_string(kNormalizationVersion) + " identifier " +
          std::to_string(static_cast<int>(mapping.key_identifier));
  for (const MappedColumn& column : mapping.columns)
    salt_ += " " + std::string(key_spec(column.key).name) + (column.prehashed ? "/prehashed" : "") +
             (column.date_order == normalize::DateOrder::DayFirst &&
                      (column.key == Key::DateOfBirth || column.key == Key::BirthMonth ||
                       column.key == Key::BirthDay)
                  ? "/dmy"
                  : "");
  salt_.push_back('\0');
}

void SourceRecords::pack(const std::vector<std::optional<std::string_view>>& values,
                         std::string& out) {
  packed_.assign(salt_);
  std::size_t salt = packed_.size();
  for (const std::optional<std::string_view>& value : values) {
    // A NULL is told apart from '': its length field holds 0, a value's is one more.
    append_length(packed_, value ? value->size() + 1 : 0);
    if (value) packed_ += *value;
  }
  unsigned char digest[sha256_length];
  sha256(packed_, digest);
  out.assign(reinterpret_cast<const char*>(digest), kSourceDigestLength);
  out.append(packed_, salt, std::string::npos);
}

void SourceRecords::unpack(std::string_view record,
                           std::vector<std::optional<std::string_view>>& values) const {
  if (record.size() < kSourceDigestLength) throw InvalidArgument("malformed source record");
  values.assign(columns_, std::nullopt);
  std::size_t at = kSourceDigestLength;
  for (std::size_t i = 0; i < columns_; ++i) {
    // One more than the value's length; 0 for NULL.
    std::size_t length = read_length(record, at, "source record");
    if (length == 0) continue;
    if (length - 1 > record.size() - at) throw InvalidArgument("malformed source record");
    values[i] = record.substr(at, length - 1);
    at += length - 1;
  }
  if (at != record.size()) throw InvalidArgument("malformed source record");
}

}  // namespace connector
