// Cuts an export's members into batches of at most batch_size, each with
// Meta's session fields, and hands them to the upload engine. A batch is
// closed only when the next member arrives or the input ends, so that the
// last one carries last_batch_flag: true. A closed batch's body (each member
// hashed and written as JSON) is built on a thread of its own while the
// caller reads the next members and drives the engine, so an export's hashing
// has a core of its own. At most kBodiesAhead bodies are built or waiting
// beyond what the engine has in flight: memory never grows with the segment.
#pragma once

#include <cstdint>
#include <deque>
#include <future>
#include <string>
#include <string_view>
#include <vector>

#include "export/members.hpp"
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
  // `format` and `schema` must outlive the sender.
  ExportSender(UploadEngine& engine, const MemberFormat& format,
               const std::vector<std::string>& schema, SenderSettings settings);
  ~ExportSender();  // waits for the bodies being built

  static constexpr std::size_t kBodiesAhead = 2;

  // False while full batches wait for room in the engine: poll() first.
  bool accepts_rows() const noexcept;
  void add_member(std::string_view member);
  // No more members: the batch in progress becomes the last one.
  void finish();

  // Submits the bodies that are built, in order, while the engine has room;
  // drives it; returns final outcomes. Rethrows an error of a body's build
  // (a malformed member).
  std::vector<BatchOutcome> poll(int timeout_ms);

  bool done() const noexcept;  // finished, all submitted, all reported

 private:
  void close_batch(bool last);

  UploadEngine& engine_;
  const MemberFormat& format_;
  const std::vector<std::string>& schema_;
  SenderSettings settings_;
  std::string members_;  // of the open batch, each after its 4-byte length
  std::size_t member_count_ = 0;
  std::deque<std::future<UploadBatch>> bodies_;
  std::uint64_t next_batch_seq_ = 1;
  bool finished_ = false;
};

}  // namespace connector
