// What an export of a segment would send, without sending anything: rows read,
// exportable and skipped by reason, how often each key has a valid value and
// which column it comes from, the batches and an estimate of the time, and a
// few rows' normalized (not hashed) values. fb_preview_export's report.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "export/export_mapping.hpp"
#include "export/export_rows.hpp"

namespace connector {

struct PreviewSettings {
  std::string segment;
  std::int64_t batch_size = 10000;
  int max_parallel_requests = 4;
  std::int64_t max_profiles = 0;  // connector.max_profiles_per_export
  double read_seconds = 0;        // how long reading the segment took
  double seconds_per_batch = 1;   // a batch's share of a run's time, from recent runs or assumed
  std::string estimate_basis;     // where seconds_per_batch comes from
};

class ExportPreview {
 public:
  ExportPreview(const ExportMapping& mapping, std::size_t sample_rows);

  // One row as RowEncoder::encode left it: why it is skipped, if it is, and
  // its cells in schema order.
  void add_row(const std::optional<SkipReason>& skipped, const std::vector<std::string>& cells);

  // The report, as a JSON object.
  std::string report(const PreviewSettings& settings) const;

 private:
  const ExportMapping& mapping_;
  std::size_t sample_rows_;
  std::int64_t rows_read_ = 0;
  std::int64_t rows_exportable_ = 0;
  std::array<std::int64_t, skip_reason_count> skipped_{};
  std::vector<std::int64_t> valid_;  // per schema entry: rows with a value
  std::vector<std::vector<std::string>> sample_;
};

}  // namespace connector
