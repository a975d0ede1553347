// Sends prepared member batches to the Graph API with several requests in
// flight, retrying by error class (docs/graph-api.md section 5) and keeping the
// usersreplace session rules (section 3.2). A backend has no threads and must
// answer interrupts, so nothing here blocks or runs on its own: the caller
// submits batches while there is room and calls poll() in its wait loop, which
// drives libcurl multi for a bounded time and hands back the batches that are
// done. Memory is bounded by max_in_flight batch bodies, each released as soon
// as its batch is final.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "graph/graph_client.hpp"
#include "graph/graph_error.hpp"

namespace connector {

enum class UploadOperation {
  Add,      // POST /{audience}/users
  Remove,   // DELETE /{audience}/users, with the JSON body
  Replace,  // POST /{audience}/usersreplace
};

struct UploadBatch {
  std::uint64_t batch_seq = 0;  // 1-based, as in the session object inside `body`
  bool last = false;            // last_batch_flag inside `body`
  std::size_t rows = 0;
  std::string body;  // the complete JSON body: {"payload": {...}, "session": {...}}
};

struct BatchOutcome {
  UploadOperation operation = UploadOperation::Add;
  std::string audience_id;
  std::uint64_t batch_seq = 0;
  std::size_t rows = 0;
  bool succeeded = false;
  std::int64_t num_received = 0;  // from the response: the session's running total
  std::int64_t num_invalid_entries = 0;
  // The response's invalid_entry_samples object as JSON text, with as many
  // samples as fit in 4 KB (still a valid object); "{}" when none.
  std::string invalid_entry_samples;
  int attempts = 0;  // requests sent for this batch; 0 when it was never sent
  // When !succeeded: the last error and its class. A batch that was not sent
  // because its replace session or its credential had already failed carries
  // the Session or ReAuth class with a message saying so.
  GraphError error;
  ErrorClass error_class = ErrorClass::Retry;
  // The last request was sent but no answer came (connection dropped, timeout,
  // unreadable 2xx): Meta may have applied it. A Replace batch 1 in this state
  // is never resent (R3); the caller checks the session before going on.
  bool outcome_unknown = false;
};

// What the answer to an accepted member upload says; nullopt when it is not a
// JSON object (too deep counts as not one). Exposed for the fuzz target.
struct UploadAnswer {
  std::int64_t num_received = 0;
  std::int64_t num_invalid_entries = 0;
  std::string invalid_entry_samples;  // as in BatchOutcome
};
std::optional<UploadAnswer> parse_upload_answer(std::string_view body);

struct EngineSettings {
  int max_in_flight = 4;  // connector.max_parallel_requests
  int max_attempts = 8;   // 1 + connector.max_retries
  // Reference 5.3: the n-th retry waits min(cap, base * 2^(n-1)) * random(0.5, 1.0).
  std::int64_t base_delay_ms = 2000;
  std::int64_t max_delay_ms = 15 * 60 * 1000;
  std::uint64_t jitter_seed = 0;  // 0: seeded from std::random_device; tests fix it
};

// Monotonic milliseconds. Injectable so that tests can move time by hand;
// nullptr means std::chrono::steady_clock.
using MonotonicMs = std::int64_t (*)();

// The jittered exponential backoff of reference 5.3, as the engine draws it.
class Backoff {
 public:
  Backoff(std::int64_t base_ms, std::int64_t cap_ms, std::uint64_t seed);
  // The wait before retry number `retry` (1 for the first retry), in
  // [0.5, 1.0] * min(cap, base * 2^(retry-1)) milliseconds.
  std::int64_t delay_ms(int retry);

 private:
  std::int64_t base_ms_;
  std::int64_t cap_ms_;
  std::mt19937_64 random_;
};

// Seconds a Retry-After header asks for (delta-seconds or an HTTP date,
// relative to `now_unix`), at most one day; 0 when absent or malformed.
std::int64_t retry_after_seconds(const Headers& headers, std::int64_t now_unix) noexcept;

class UploadEngine {
 public:
  // `credentials` must outlive the engine. `should_abort` is called between
  // waits inside poll(); it must not throw or longjmp. Throws InvalidArgument
  // for bad settings (see GraphClient) or an EngineSettings value out of range.
  UploadEngine(GraphSettings settings, const Credentials& credentials, EngineSettings engine,
               AbortCheck should_abort, MonotonicMs clock = nullptr);
  ~UploadEngine();  // cancels and frees every transfer
  UploadEngine(const UploadEngine&) = delete;
  UploadEngine& operator=(const UploadEngine&) = delete;

  // Fewer than max_in_flight batches submitted and not yet reported.
  bool has_room() const noexcept;

  // Queues a batch; it is sent from poll(). Throws std::logic_error without
  // room, and for a Replace batch 1 while batches of an earlier replace
  // session to the same audience are unreported (one session per audience, R8).
  void submit(UploadOperation operation, const std::string& audience_id, UploadBatch batch);

  // Runs transfers for at most timeout_ms (returning sooner once some batch
  // became final, or at once when idle), starts due sends and retries, and
  // returns the outcomes that became final. Throws GraphRequestError(Aborted)
  // when should_abort() turns true; every transfer is then cancelled and the
  // engine accepts nothing more.
  std::vector<BatchOutcome> poll(int timeout_ms);

  bool idle() const noexcept;  // nothing submitted and unreported

  // The end of the account-wide pause asked for by throttling headers, in the
  // engine's clock (milliseconds); 0 when no pause is in effect.
  std::int64_t blocked_until_ms() const noexcept;

  int max_in_flight_seen() const noexcept;       // most requests ever in flight at once
  std::uint64_t requests_sent() const noexcept;  // every attempt, retries included
  std::size_t body_bytes_held() const noexcept;  // bodies of unreported batches

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace connector
