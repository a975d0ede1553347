#include "export/export_mapping.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <optional>

#include "errors.hpp"
#include "graph/bounded_json.hpp"
#include "identifiers/identifier.hpp"

namespace connector {
namespace {

using Json = nlohmann::json;

std::string lowercase(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

bool names_column(std::string_view column_names, std::string_view column) {
  std::string lower = lowercase(column);
  std::size_t start = 0;
  while (start < column_names.size()) {
    std::size_t end = column_names.find(' ', start);
    if (end == std::string_view::npos) end = column_names.size();
    if (column_names.substr(start, end - start) == lower) return true;
    start = end + 1;
  }
  return false;
}

std::string column_list(const std::vector<std::string>& columns) {
  std::string list;
  for (const std::string& column : columns) list += (list.empty() ? "" : ", ") + column;
  return list;
}

std::optional<std::size_t> find_column(const std::vector<std::string>& columns,
                                       std::string_view name) {
  // Exact first (SQL identifiers are case-sensitive when quoted), then any case.
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == name) return i;
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (lowercase(columns[i]) == lowercase(name)) return i;
  return std::nullopt;
}

bool has(const std::vector<MappedColumn>& mapped, Key key) {
  return std::any_of(mapped.begin(), mapped.end(),
                     [key](const MappedColumn& column) { return column.key == key; });
}

bool is_date_key(Key key) {
  return key == Key::DateOfBirth || key == Key::BirthMonth || key == Key::BirthDay;
}

std::vector<MappedColumn> mapped_by_name(const std::vector<std::string>& columns,
                                         normalize::DateOrder default_order) {
  std::vector<MappedColumn> mapped;
  for (std::size_t k = 0; k < key_count; ++k) {
    const KeySpec& spec = key_spec_at(k);
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (!names_column(spec.column_names, columns[i])) continue;
      mapped.push_back({i, columns[i], spec.key, false, default_order});
      break;
    }
  }
  // A whole date of birth already gives DOBY, DOBM and DOBD.
  if (has(mapped, Key::DateOfBirth))
    mapped.erase(std::remove_if(mapped.begin(), mapped.end(),
                                [](const MappedColumn& column) {
                                  return column.key == Key::BirthYear ||
                                         column.key == Key::BirthMonth ||
                                         column.key == Key::BirthDay;
                                }),
                 mapped.end());
  return mapped;
}

std::vector<MappedColumn> mapped_by_json(std::string_view segment,
                                         const std::vector<std::string>& columns,
                                         std::string_view mapping_json,
                                         normalize::DateOrder default_order) {
  Json mapping = parse_bounded_json(mapping_json);
  if (mapping.is_discarded() || !mapping.is_object() || mapping.empty())
    throw InvalidArgument("the mapping for segment " + std::string(segment) +
                              " is not a JSON object of keys and columns",
                          "Use for example {\"EMAIL\": \"email\", \"FN\": \"first_name\"}.");
  std::vector<MappedColumn> mapped;
  for (const auto& [key_name, target] : mapping.items()) {
    Key key = parse_key(key_name);
    std::string column_name;
    bool prehashed = false;
    std::optional<normalize::DateOrder> date_order;
    if (target.is_string()) {
      column_name = target.get<std::string>();
    } else if (target.is_object() && target.contains("column") && target["column"].is_string()) {
      column_name = target["column"].get<std::string>();
      auto flag = target.find("prehashed");
      if (flag != target.end() && !flag->is_boolean())
        throw InvalidArgument("\"prehashed\" for " + key_name + " must be true or false");
      prehashed = flag != target.end() && flag->get<bool>();
      auto order = target.find("date_order");
      if (order != target.end()) {
        if (!is_date_key(key))
          throw InvalidArgument("\"date_order\" applies to DOB, DOBM and DOBD, not to " +
                                std::string(key_spec(key).name));
        if (!order->is_string())
          throw InvalidArgument("\"date_order\" for " + key_name + " must be \"MDY\" or \"DMY\"");
        date_order = parse_date_order(order->get<std::string>());
      }
    } else {
      throw InvalidArgument("the mapping of " + key_name + " for segment " + std::string(segment) +
                                " is neither a column name nor an object",
                            "Use \"column\" or {\"column\": \"name\", \"prehashed\": true}.");
    }
    if (prehashed && !key_spec(key).hashed)
      throw InvalidArgument(std::string(key_spec(key).name) + " is sent unhashed, so its column " +
                            "cannot be declared prehashed");
    if (prehashed && key == Key::DateOfBirth)
      throw InvalidArgument("DOB cannot be prehashed: map hashed DOBY, DOBM and DOBD columns");
    auto column = find_column(columns, column_name);
    if (!column)
      throw UndefinedColumn("column \"" + column_name + "\" mapped to " +
                                std::string(key_spec(key).name) + " does not exist in segment " +
                                std::string(segment),
                            "Its columns are: " + column_list(columns) + ".");
    for (const MappedColumn& other : mapped)
      if (other.key == key)
        throw InvalidArgument(std::string(key_spec(key).name) + " is mapped twice");
    mapped.push_back({*column, columns[*column], key, prehashed,
                      date_order.value_or(default_order)});
  }
  if (has(mapped, Key::DateOfBirth) &&
      (has(mapped, Key::BirthYear) || has(mapped, Key::BirthMonth) || has(mapped, Key::BirthDay)))
    throw InvalidArgument(
        "DOB and DOBY, DOBM or DOBD are both mapped for segment " + std::string(segment),
        "A DOB column is sent as DOBY, DOBM and DOBD: map either it or the parts.");
  // Payload order follows the key table, whatever the JSON order was.
  std::sort(mapped.begin(), mapped.end(),
            [](const MappedColumn& a, const MappedColumn& b) { return a.key < b.key; });
  return mapped;
}

KeyIdentifier parse_key_identifier(std::string_view text) {
  std::string lower = lowercase(text);
  if (lower.empty()) return KeyIdentifier::Any;
  if (lower == "email") return KeyIdentifier::Email;
  if (lower == "phone") return KeyIdentifier::Phone;
  if (lower == "name_and_address") return KeyIdentifier::NameAndAddress;
  throw InvalidArgument("unknown key identifier \"" + std::string(text) + "\"",
                        "Use email, phone or name_and_address, or leave it NULL to send every "
                        "row that has any of them.");
}

}  // namespace

ExportMapping resolve_mapping(std::string_view segment, const std::vector<std::string>& columns,
                              std::string_view mapping_json, std::string_view key_identifier,
                              normalize::DateOrder date_order) {
  ExportMapping mapping;
  mapping.key_identifier = parse_key_identifier(key_identifier);
  mapping.columns = mapping_json.empty() ? mapped_by_name(columns, date_order)
                                         : mapped_by_json(segment, columns, mapping_json, date_order);
  const auto& mapped = mapping.columns;
  bool email = has(mapped, Key::Email);
  bool phone = has(mapped, Key::Phone);
  bool name_and_address = has(mapped, Key::FirstName) && has(mapped, Key::LastName) &&
                          (has(mapped, Key::Zip) || has(mapped, Key::City) ||
                           has(mapped, Key::State) || has(mapped, Key::Country));
  bool usable = false;
  switch (mapping.key_identifier) {
    case KeyIdentifier::Any:
      usable = email || phone || name_and_address;
      break;
    case KeyIdentifier::Email:
      usable = email;
      break;
    case KeyIdentifier::Phone:
      usable = phone;
      break;
    case KeyIdentifier::NameAndAddress:
      usable = name_and_address;
      break;
  }
  if (!usable)
    throw UndefinedColumn(
        "segment " + std::string(segment) + " has no column for the key identifier" +
            (key_identifier.empty() ? "" : " " + std::string(key_identifier)),
        "Map an e-mail column to EMAIL, a phone column to PHONE, or FN, LN and one of ZIP, CT, "
        "ST or COUNTRY, e.g. mapping => '{\"EMAIL\": \"email_column\"}'. Its columns are: " +
            column_list(columns) + ".");
  for (const MappedColumn& column : mapped) {
    if (column.key == Key::DateOfBirth) {
      for (const char* part : {"DOBY", "DOBM", "DOBD"}) mapping.schema.emplace_back(part);
    } else {
      mapping.schema.emplace_back(key_spec(column.key).name);
    }
  }
  return mapping;
}

std::string unhashed_key_names(const ExportMapping& mapping) {
  std::string names;
  for (const MappedColumn& column : mapping.columns) {
    const KeySpec& spec = key_spec(column.key);
    if (spec.hashed) continue;
    if (!names.empty()) names += ", ";
    names += spec.name;
  }
  return names;
}

}  // namespace connector
