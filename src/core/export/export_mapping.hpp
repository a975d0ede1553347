// Which segment column feeds which Meta key, and which rows an export may
// send: resolved once per export, before anything is sent, so that a missing
// column or an unknown key is an error and not a half-finished upload.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "identifiers/keys.hpp"
#include "identifiers/normalize.hpp"

namespace connector {

// What makes a row identifiable enough to send.
enum class KeyIdentifier {
  Any,             // a valid e-mail, a valid phone, or name and address (the default)
  Email,           // a valid EMAIL
  Phone,           // a valid PHONE
  NameAndAddress,  // valid FN and LN, and ZIP, CT, ST or COUNTRY
};

struct MappedColumn {
  std::size_t column = 0;  // position among the segment's columns
  std::string column_name;
  Key key = Key::Email;
  bool prehashed = false;  // already 64 lowercase hex: checked, sent as is
  // DOB, DOBM, DOBD: how a date like 04/01/1950 is read.
  normalize::DateOrder date_order = normalize::DateOrder::MonthFirst;
  bool from_mapping = false;  // named by the mapping, not matched by the column's name
};

struct ExportMapping {
  std::vector<MappedColumn> columns;  // in payload order
  KeyIdentifier key_identifier = KeyIdentifier::Any;
  // Meta's schema, in payload order: a DOB column becomes DOBY, DOBM, DOBD.
  std::vector<std::string> schema;
};

// `mapping_json` is empty or an object {"EMAIL": "email_col", "FN": {"column":
// "first", "prehashed": true}, "DOB": {"column": "born", "date_order": "DMY"},
// "PHONE": null, ...} with keys in any case: it chooses the column of the keys
// it names (null: none); every other key is matched by its column's name (see
// KeySpec::column_names; EXTERN_ID and MADID, sent unhashed, never are) among
// the columns the mapping does not use. `key_identifier` is "", "any",
// "email", "phone" or "name_and_address". `date_order` applies to the date
// columns the mapping gives no order of their own. Throws InvalidArgument,
// UndefinedColumn or AmbiguousColumn (two columns fit one key by name) naming
// the segment, the columns or key, and the fix.
ExportMapping resolve_mapping(std::string_view segment, const std::vector<std::string>& columns,
                              std::string_view mapping_json, std::string_view key_identifier,
                              normalize::DateOrder date_order = normalize::DateOrder::MonthFirst);

// Which column feeds which key, as a JSON object in payload order:
// {"EMAIL": {"column": "email", "by": "name"}, "DOB": {"column": "born",
// "by": "mapping", "date_order": "DMY"}, ...}.
std::string describe_mapping(const ExportMapping& mapping);

// The mapped keys that leave unhashed, as "EXTERN_ID, MADID"; empty when none.
std::string unhashed_key_names(const ExportMapping& mapping);

}  // namespace connector
