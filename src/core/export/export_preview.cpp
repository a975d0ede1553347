#include "export/export_preview.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "identifiers/keys.hpp"

namespace connector {
namespace {

using Json = nlohmann::ordered_json;

double rounded(double value, int digits) {
  double scale = std::pow(10.0, digits);
  return std::round(value * scale) / scale;
}

const char* key_identifier_name(KeyIdentifier identifier) {
  switch (identifier) {
    case KeyIdentifier::Email:
      return "email";
    case KeyIdentifier::Phone:
      return "phone";
    case KeyIdentifier::NameAndAddress:
      return "name_and_address";
    case KeyIdentifier::Any:
      break;
  }
  return "any";
}

// The mapped column that fills schema entry `index` (a DOB column fills three).
const MappedColumn& column_of_cell(const ExportMapping& mapping, std::size_t index) {
  std::size_t cell = 0;
  for (const MappedColumn& column : mapping.columns) {
    std::size_t cells = column.key == Key::DateOfBirth ? 3 : 1;
    if (index < cell + cells) return column;
    cell += cells;
  }
  return mapping.columns.back();
}

// A cell as a person reads it: a prehashed column's digest as its hex.
std::string readable(const MappedColumn& column, const std::string& cell) {
  if (!column.prehashed) return cell;
  static const char digits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char byte : cell) {
    hex.push_back(digits[byte >> 4]);
    hex.push_back(digits[byte & 0x0f]);
  }
  return hex;
}

}  // namespace

ExportPreview::ExportPreview(const ExportMapping& mapping, std::size_t sample_rows)
    : mapping_(mapping), sample_rows_(sample_rows), valid_(mapping.schema.size(), 0) {}

void ExportPreview::add_row(const std::optional<SkipReason>& skipped,
                            const std::vector<std::string>& cells) {
  ++rows_read_;
  for (std::size_t i = 0; i < cells.size() && i < valid_.size(); ++i)
    if (!cells[i].empty()) ++valid_[i];
  if (skipped) {
    ++skipped_[static_cast<std::size_t>(*skipped)];
    return;
  }
  ++rows_exportable_;
  if (sample_.size() < sample_rows_) sample_.push_back(cells);
}

std::string ExportPreview::report(const PreviewSettings& settings) const {
  Json report;
  report["segment"] = settings.segment;
  report["rows_read"] = rows_read_;
  report["rows_exportable"] = rows_exportable_;
  Json skipped = Json::object();
  for (std::size_t i = 0; i < skip_reason_count; ++i)
    if (skipped_[i] > 0) skipped[skip_reason_name(static_cast<SkipReason>(i))] = skipped_[i];
  report["rows_skipped"] = skipped;
  report["key_identifier"] = key_identifier_name(mapping_.key_identifier);
  Json keys = Json::object();
  for (std::size_t i = 0; i < mapping_.schema.size(); ++i) {
    const MappedColumn& column = column_of_cell(mapping_, i);
    keys[mapping_.schema[i]] = {
        {"column", column.column_name},
        {"by", column.from_mapping ? "mapping" : "name"},
        {"valid_share", rows_read_ > 0 ? rounded(double(valid_[i]) / double(rows_read_), 4) : 0.0}};
  }
  report["keys"] = keys;
  std::int64_t batches =
      settings.batch_size > 0 ? (rows_exportable_ + settings.batch_size - 1) / settings.batch_size : 0;
  report["batches"] = batches;
  report["batch_size"] = settings.batch_size;
  report["max_parallel_requests"] = settings.max_parallel_requests;
  if (settings.max_profiles > 0 && rows_exportable_ > settings.max_profiles)
    report["over_max_profiles_per_export"] = settings.max_profiles;
  double sending = double(batches) * settings.seconds_per_batch;
  report["estimated_seconds"] = rounded(settings.read_seconds + sending, 2);
  report["estimate_basis"] = settings.estimate_basis;
  Json sample = Json::array();
  for (const auto& cells : sample_) {
    Json row = Json::object();
    for (std::size_t i = 0; i < cells.size() && i < mapping_.schema.size(); ++i)
      row[mapping_.schema[i]] =
          cells[i].empty() ? Json() : Json(readable(column_of_cell(mapping_, i), cells[i]));
    sample.push_back(row);
  }
  report["sample"] = sample;
  return report.dump();
}

}  // namespace connector
