// Cuts an export's encoded rows into batches of at most batch_size rows, each
// with Meta's session fields, and hands them to the upload engine. A batch is
// closed only when the next row arrives or the input ends, so that the last
// one carries last_batch_flag: true. Holds at most one finished batch beyond
// what the engine has in flight: memory never grows with the segment.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "export/export_rows.hpp"
#include "graph/upload_engine.hpp"

namespace connector {

struct SenderSettings {
  UploadOperation operation = UploadOperation::Add;
  std::string audience_id;
  std::int64_t session_id = 0;
  std::int64_t estimated_total = 0;
  std::size_t batch_size = 10'000;
};

class ExportSender {
 public:
  ExportSender(UploadEngine& engine, const std::vector<std::string>& schema,
               SenderSettings settings);

  // False while a full batch waits for room in the engine: poll() first.
  bool accepts_rows() const noexcept;
  void add_row_json(std::string_view row);
  // No more rows: the batch in progress becomes the last one.
  void finish();

  // Submits what the engine has room for, drives it, returns final outcomes.
  std::vector<BatchOutcome> poll(int timeout_ms);

  bool done() const noexcept;  // finished, all submitted, all reported

 private:
  void close_batch(bool last);

  UploadEngine& engine_;
  SenderSettings settings_;
  PayloadWriter writer_;
  std::deque<UploadBatch> ready_;
  std::uint64_t next_batch_seq_ = 1;
  bool finished_ = false;
};

}  // namespace connector
