// Turning segment rows into members: each mapped value normalized by the same
// core functions as fb_normalize() (and hashed, when the member becomes a
// payload row, as fb_hash() does), rows without a valid key identifier skipped
// with a reason; and batches written as the JSON body Meta's /users and
// /usersreplace edges take.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "export/export_mapping.hpp"

namespace connector {

// Why a row is not sent. "no_" says the row has no value for what the key
// identifier needs, "invalid_" that it has one that is not valid.
enum class SkipReason {
  NoIdentifier,
  InvalidEmail,
  InvalidPhone,
  IncompleteNameAndAddress,
  ValueTooLong,
  NoEmail,
  NoPhone,
  UnknownCountry,  // a national phone number with a COUNTRY we do not know
  NoNameAndAddress,
  Duplicate,  // the same values as another row of the segment: sent once (mirror, replace)
};
inline constexpr std::size_t skip_reason_count = 10;

// No identifier is longer than this (in UTF-8 bytes): a row with a longer
// value is skipped as value_too_long, whatever the value's key.
inline constexpr std::size_t kMaxValueBytes = 1024;

// "no_identifier", "invalid_email", "invalid_phone", "incomplete_name_and_address",
// "value_too_long", "no_email", "no_phone", "unknown_country", "no_name_and_address",
// "duplicate"
const char* skip_reason_name(SkipReason reason) noexcept;

class RowEncoder {
 public:
  explicit RowEncoder(const ExportMapping& mapping);

  // `values` holds one value per mapped column, in mapping order (nullopt:
  // SQL NULL). Fills `cells`, one per schema entry in the form a member
  // stores it (see members.hpp; "" when unknown), and returns why the row
  // must not be sent, if it must not.
  std::optional<SkipReason> encode(const std::vector<std::optional<std::string_view>>& values,
                                   std::vector<std::string>& cells);

  // Values of prehashed columns that were not 64 lowercase hex (sent empty).
  std::int64_t rejected_prehashed_values() const noexcept { return rejected_prehashed_; }

 private:
  // Position of a key's cell in the schema, or npos when it is not mapped.
  std::size_t cell_of(std::string_view key) const;

  const ExportMapping& mapping_;
  std::optional<std::size_t> country_value_;  // the row's COUNTRY: PHONE's default country
  // Cells the key identifier looks at, resolved once rather than per row.
  std::size_t email_, phone_, first_name_, last_name_, zip_, city_, state_, country_;
  std::int64_t rejected_prehashed_ = 0;
  std::string scratch_;
  std::vector<bool> given_;  // per cell: the row has a value for it (not NULL, not blank)
};

// One batch's JSON body, written incrementally into one buffer sized for
// `expected_rows` up front: memory is the batch, never the segment, and a
// body is neither regrown nor copied on its way out.
class PayloadWriter {
 public:
  PayloadWriter(const std::vector<std::string>& schema, std::size_t expected_rows);

  // One row: `append_row` appends a JSON array of strings to the body it is
  // given (MemberFormat::append_row_json).
  template <typename AppendRow>
  void add_row(AppendRow&& append_row) {
    if (rows_ > 0) body_.push_back(',');
    append_row(body_);
    ++rows_;
  }
  std::size_t rows() const noexcept { return rows_; }

  // {"payload": {...}, "session": {...}}; starts the next batch empty.
  std::string finish(std::int64_t session_id, std::uint64_t batch_seq, bool last_batch,
                     std::int64_t estimated_total);

 private:
  std::string prefix_;  // {"payload":{"schema":[...],"is_raw":true,"data":[
  std::size_t capacity_;
  std::string body_;
  std::size_t rows_ = 0;
};

// Appends `text` as a JSON string literal.
void append_json_string(std::string& out, std::string_view text);

}  // namespace connector
