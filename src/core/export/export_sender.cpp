#include "export/export_sender.hpp"

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "export/export_rows.hpp"
#include "signal_free_task.hpp"

namespace connector {

ExportSender::ExportSender(UploadEngine& engine, const MemberFormat& format,
                           const std::vector<std::string>& schema, SenderSettings settings)
    : engine_(engine), format_(format), schema_(schema), settings_(std::move(settings)) {
  if (settings_.batch_size == 0 || settings_.batch_size > 10'000)
    throw std::invalid_argument("batch size must be 1 to 10000 rows");
}

ExportSender::~ExportSender() {
  for (auto& body : bodies_)
    if (body.valid()) body.wait();
}

bool ExportSender::accepts_rows() const noexcept {
  return !finished_ && (member_count_ < settings_.batch_size || bodies_.size() < kBodiesAhead);
}

void ExportSender::close_batch(bool last) {
  std::uint64_t batch_seq = next_batch_seq_++;
  std::size_t rows = member_count_;
  bodies_.push_back(start_signal_free_task(
      [this, members = std::move(members_), rows, batch_seq, last]() -> UploadBatch {
        PayloadWriter writer(schema_, rows);
        for (std::size_t at = 0; at < members.size();) {
          std::uint32_t length;
          std::memcpy(&length, members.data() + at, sizeof length);
          at += sizeof length;
          std::string_view member = std::string_view(members).substr(at, length);
          writer.add_row([&](std::string& body) { format_.append_row_json(member, body); });
          at += length;
        }
        UploadBatch batch;
        batch.batch_seq = batch_seq;
        batch.last = last;
        batch.rows = rows;
        batch.body = writer.finish(settings_.session_id, batch_seq, last, settings_.estimated_total);
        return batch;
      }));
  members_.clear();
  member_count_ = 0;
}

void ExportSender::add_member(std::string_view member) {
  if (!accepts_rows()) throw std::logic_error("ExportSender::add_member without room");
  // The full batch is not the last one: this member proves there is more.
  if (member_count_ == settings_.batch_size) close_batch(false);
  auto length = static_cast<std::uint32_t>(member.size());
  members_.append(reinterpret_cast<const char*>(&length), sizeof length);
  members_.append(member);
  ++member_count_;
}

void ExportSender::finish() {
  if (finished_) return;
  finished_ = true;
  if (member_count_ > 0) close_batch(true);
}

std::vector<BatchOutcome> ExportSender::poll(int timeout_ms) {
  // With nothing in flight, wait here for the next body rather than spin.
  if (!bodies_.empty() && engine_.idle())
    bodies_.front().wait_for(std::chrono::milliseconds(timeout_ms));
  while (!bodies_.empty() && engine_.has_room() &&
         bodies_.front().wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
    std::future<UploadBatch> body = std::move(bodies_.front());
    bodies_.pop_front();
    engine_.submit(settings_.operation, settings_.audience_id, body.get());
  }
  return engine_.poll(timeout_ms);
}

bool ExportSender::done() const noexcept {
  return finished_ && bodies_.empty() && engine_.idle();
}

}  // namespace connector
