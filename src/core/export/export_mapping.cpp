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

bool is_birth_part(Key key) {
  return key == Key::BirthYear || key == Key::BirthMonth || key == Key::BirthDay;
}

// What a mapping object decides: keys given a column, and keys turned off
// with null. Every other key is matched by its column's name.
struct MappingChoices {
  std::vector<MappedColumn> mapped;
  std::vector<Key> turned_off;

  bool decides(Key key) const {
    return has(mapped, key) ||
           std::find(turned_off.begin(), turned_off.end(), key) != turned_off.end();
  }
  bool uses_column(std::size_t column) const {
    return std::any_of(mapped.begin(), mapped.end(),
                       [column](const MappedColumn& m) { return m.column == column; });
  }
};

MappingChoices parse_mapping(std::string_view segment, const std::vector<std::string>& columns,
                             std::string_view mapping_json, normalize::DateOrder default_order) {
  MappingChoices choices;
  if (mapping_json.empty()) return choices;
  Json mapping = parse_bounded_json(mapping_json);
  if (mapping.is_discarded() || !mapping.is_object())
    throw InvalidArgument("the mapping for segment " + std::string(segment) +
                              " is not a JSON object of keys and columns",
                          "Use for example {\"EMAIL\": \"email\", \"FN\": \"first_name\"}; "
                          "keys left out are matched by column name, null turns one off.");
  for (const auto& [key_name, target] : mapping.items()) {
    Key key = parse_key(key_name);
    if (choices.decides(key))
      throw InvalidArgument(std::string(key_spec(key).name) + " is mapped twice");
    if (target.is_null()) {
      choices.turned_off.push_back(key);
      continue;
    }
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
                                " is neither a column name, an object nor null",
                            "Use \"column\", {\"column\": \"name\", \"prehashed\": true}, or "
                            "null to send no " + std::string(key_spec(key).name) + ".");
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
    choices.mapped.push_back({*column, columns[*column], key, prehashed,
                              date_order.value_or(default_order), true});
  }
  if (has(choices.mapped, Key::DateOfBirth) &&
      std::any_of(choices.mapped.begin(), choices.mapped.end(),
                  [](const MappedColumn& m) { return is_birth_part(m.key); }))
    throw InvalidArgument(
        "DOB and DOBY, DOBM or DOBD are both mapped for segment " + std::string(segment),
        "A DOB column is sent as DOBY, DOBM and DOBD: map either it or the parts.");
  return choices;
}

// The keys the mapping leaves open, matched by their columns' names among the
// columns the mapping does not use. Two columns fitting one key is an error:
// picking one silently could send the wrong person's data.
void match_by_name(std::string_view segment, const std::vector<std::string>& columns,
                   normalize::DateOrder default_order, MappingChoices& choices) {
  std::vector<MappedColumn> matched;
  for (std::size_t k = 0; k < key_count; ++k) {
    const KeySpec& spec = key_spec_at(k);
    if (choices.decides(spec.key)) continue;
    std::optional<std::size_t> found;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (choices.uses_column(i) || !names_column(spec.column_names, columns[i])) continue;
      if (found)
        throw AmbiguousColumn(
            "columns \"" + columns[*found] + "\" and \"" + columns[i] + "\" of segment " +
                std::string(segment) + " both fit " + std::string(spec.name),
            "Choose one with mapping => '{\"" + std::string(spec.name) + "\": \"" + columns[*found] +
                "\"}', or send neither with mapping => '{\"" + std::string(spec.name) +
                "\": null}'.");
      found = i;
    }
    if (found) matched.push_back({*found, columns[*found], spec.key, false, default_order, false});
  }
  // A date of birth already gives DOBY, DOBM and DOBD; parts the mapping
  // chose leave a date column found by name out.
  bool whole_date = has(choices.mapped, Key::DateOfBirth) || has(matched, Key::DateOfBirth);
  bool mapped_parts = std::any_of(choices.mapped.begin(), choices.mapped.end(),
                                  [](const MappedColumn& m) { return is_birth_part(m.key); });
  matched.erase(std::remove_if(matched.begin(), matched.end(),
                               [&](const MappedColumn& m) {
                                 return (whole_date && is_birth_part(m.key)) ||
                                        (mapped_parts && m.key == Key::DateOfBirth);
                               }),
                matched.end());
  choices.mapped.insert(choices.mapped.end(), matched.begin(), matched.end());
}

KeyIdentifier parse_key_identifier(std::string_view text) {
  std::string lower = lowercase(text);
  if (lower.empty() || lower == "any") return KeyIdentifier::Any;
  if (lower == "email") return KeyIdentifier::Email;
  if (lower == "phone") return KeyIdentifier::Phone;
  if (lower == "name_and_address") return KeyIdentifier::NameAndAddress;
  throw InvalidArgument("unknown key identifier \"" + std::string(text) + "\"",
                        "Use email, phone or name_and_address, or any to send every row that "
                        "has any of them.");
}

}  // namespace

ExportMapping resolve_mapping(std::string_view segment, const std::vector<std::string>& columns,
                              std::string_view mapping_json, std::string_view key_identifier,
                              normalize::DateOrder date_order) {
  ExportMapping mapping;
  mapping.key_identifier = parse_key_identifier(key_identifier);
  MappingChoices choices = parse_mapping(segment, columns, mapping_json, date_order);
  match_by_name(segment, columns, date_order, choices);
  // Payload order follows the key table, whatever the JSON order was.
  std::sort(choices.mapped.begin(), choices.mapped.end(),
            [](const MappedColumn& a, const MappedColumn& b) { return a.key < b.key; });
  mapping.columns = std::move(choices.mapped);
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

std::string describe_mapping(const ExportMapping& mapping) {
  Json described = Json::object();
  for (const MappedColumn& column : mapping.columns) {
    Json entry = {{"column", column.column_name}, {"by", column.from_mapping ? "mapping" : "name"}};
    if (column.prehashed) entry["prehashed"] = true;
    if (is_date_key(column.key))
      entry["date_order"] = column.date_order == normalize::DateOrder::DayFirst ? "DMY" : "MDY";
    described[key_spec(column.key).name] = std::move(entry);
  }
  return described.dump();
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
