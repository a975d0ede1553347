// A member of an audience as connector keeps it between reading a segment and
// sending it: the row's identifiers in normalized form, packed in compact
// binary, hashed only when a payload is written. Spool files and the mirror
// ledger hold members (a tenth of the size of the payload rows they stand
// for). A source record is what a mirror or replace run sorts: the digest of
// the row's source values, then the values themselves, so that a row whose
// values did not change since the last run is recognised without being
// normalized or hashed again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "export/export_mapping.hpp"

namespace connector {

// Part of every source digest: bump it whenever a normalization rule changes
// what some value normalizes to, so that the next mirror run of every export
// normalizes each row again instead of trusting what its ledger says.
inline constexpr int kNormalizationVersion = 2;  // 2: phone rules of issue 12

// How the payload cell is made from what a member stores for it.
enum class CellForm : std::uint8_t {
  Hashed,  // the normalized value, sent as the lowercase hex of its SHA-256
  Digest,  // a prehashed column's 32-byte digest, sent as lowercase hex
  Plain,   // MADID and EXTERN_ID, sent as stored
};

class MemberFormat {
 public:
  explicit MemberFormat(const ExportMapping& mapping);

  // The format a description() describes (a ledger's): throws InvalidArgument
  // when it is malformed.
  static MemberFormat from_description(std::string_view description);

  // Meta's schema, one entry per cell.
  const std::vector<std::string>& schema() const noexcept { return schema_; }

  // One form per schema cell.
  const std::vector<CellForm>& forms() const noexcept { return forms_; }

  // The schema with each cell's form, as a JSON object: members packed in
  // one format can be read back only in the same one.
  const std::string& description() const noexcept { return description_; }

  // Packs one stored cell per schema entry ("" when absent) into `out`.
  void encode(const std::vector<std::string>& cells, std::string& out) const;

  // Appends the payload row as a JSON array of strings to `out`. Throws
  // InvalidArgument when `member` was not packed with this format.
  void append_row_json(std::string_view member, std::string& out) const;

 private:
  MemberFormat() = default;

  std::vector<std::string> schema_;
  std::vector<CellForm> forms_;
  std::string description_;
};

inline constexpr std::size_t kSourceDigestLength = 16;

// Source records of one export configuration: the digest covers the values,
// the mapping (which key each column feeds, and how), the key identifier and
// kNormalizationVersion, so any change to those makes every row new again.
class SourceRecords {
 public:
  explicit SourceRecords(const ExportMapping& mapping);

  // kSourceDigestLength bytes of digest, then the values (nullopt: NULL),
  // into `out` (replaced).
  void pack(const std::vector<std::optional<std::string_view>>& values, std::string& out);

  // The values of a record made by pack(), as views into `record`. Throws
  // InvalidArgument when the record is malformed.
  void unpack(std::string_view record, std::vector<std::optional<std::string_view>>& values) const;

 private:
  std::size_t columns_;
  std::string salt_;
  std::string packed_;
};

}  // namespace connector
