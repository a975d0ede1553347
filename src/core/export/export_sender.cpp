#include "export/export_sender.hpp"

#include <stdexcept>

namespace connector {

ExportSender::ExportSender(UploadEngine& engine, const std::vector<std::string>& schema,
                           SenderSettings settings)
    : engine_(engine), settings_(std::move(settings)), writer_(schema) {
  if (settings_.batch_size == 0 || settings_.batch_size > 10'000)
    throw std::invalid_argument("batch size must be 1 to 10000 rows");
}

bool ExportSender::accepts_rows() const noexcept {
  return !finished_ && (writer_.rows() < settings_.batch_size || ready_.empty());
}

void ExportSender::close_batch(bool last) {
  UploadBatch batch;
  batch.batch_seq = next_batch_seq_++;
  batch.last = last;
  batch.rows = writer_.rows();
  batch.body =
      writer_.finish(settings_.session_id, batch.batch_seq, last, settings_.estimated_total);
  ready_.push_back(std::move(batch));
}

void ExportSender::add_row_json(std::string_view row) {
  if (!accepts_rows()) throw std::logic_error("ExportSender::add_row_json without room");
  // The full batch is not the last one: this row proves there is more.
  if (writer_.rows() == settings_.batch_size) close_batch(false);
  writer_.add_row_json(row);
}

void ExportSender::finish() {
  if (finished_) return;
  finished_ = true;
  if (writer_.rows() > 0) close_batch(true);
}

std::vector<BatchOutcome> ExportSender::poll(int timeout_ms) {
  while (!ready_.empty() && engine_.has_room()) {
    engine_.submit(settings_.operation, settings_.audience_id, std::move(ready_.front()));
    ready_.pop_front();
  }
  return engine_.poll(timeout_ms);
}

bool ExportSender::done() const noexcept { return finished_ && ready_.empty() && engine_.idle(); }

}  // namespace connector
