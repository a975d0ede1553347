// libcurl multi behind the upload engine. One multi handle keeps the
// connections alive between requests; easy handles are pooled. Every decision
// about a finished request (success, retry, give up, pause the account) is
// taken in finish(), from the one classification table of graph_error.hpp.
//
// Why some things are as they are:
// - A usersreplace batch 1 goes on a fresh connection: on a reused connection
//   that dies before any answer, libcurl silently sends the request again,
//   and a second batch 1 restarts the replace (R3).
// - A replace session's batch 1 goes alone; the batches after it only once it
//   succeeded (R3, R4), then as many at once as the engine allows, in any
//   order (R4 accepts that); the batch with last_batch_flag goes last, alone,
//   once every other batch of the session was confirmed: anything after it
//   would find the session closed (R6).
// - Throttling headers pause every send of the engine, not just the batch that
//   saw them: the budget belongs to the ad account (reference 4.3).

#include "graph/upload_engine.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "errors.hpp"
#include "graph/bounded_json.hpp"
#include "graph/graph_request.hpp"

namespace connector {
namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxSampleBytes = 4096;
constexpr std::int64_t kMaxHeaderDelaySeconds = 24 * 60 * 60;
// poll() never sleeps longer than this between checks of should_abort, so a
// cancel is seen promptly even when no socket wakes curl up.
constexpr int kAbortCheckIntervalMs = 100;

std::int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool equals_ignoring_case(std::string_view left, std::string_view right) noexcept {
  if (left.size() != right.size()) return false;
  for (std::size_t i = 0; i < left.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(left[i])) !=
        std::tolower(static_cast<unsigned char>(right[i])))
      return false;
  return true;
}

bool is_graph_id(std::string_view id) noexcept {
  return !id.empty() && id.size() <= 32 && id.find_first_not_of("0123456789") == std::string::npos;
}

// A JSON integer, or a numeric string as the sessions edge sends; 0 otherwise.
std::int64_t integer_of(const Json& object, const char* name) {
  auto found = object.find(name);
  if (found == object.end()) return 0;
  if (found->is_number_integer()) return found->get<std::int64_t>();
  if (found->is_number_unsigned()) {
    auto value = found->get<std::uint64_t>();
    return value <= static_cast<std::uint64_t>(INT64_MAX) ? static_cast<std::int64_t>(value) : 0;
  }
  if (found->is_string()) {
    try {
      return std::stoll(found->get_ref<const std::string&>());
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

// The samples object re-serialized with as many entries as fit, so that what
// is kept is still a JSON object a log or a jsonb column can take.
std::string capped_samples(const Json& response) {
  auto found = response.find("invalid_entry_samples");
  if (found == response.end() || !found->is_object()) return "{}";
  std::string out = "{";
  for (auto item = found->begin(); item != found->end(); ++item) {
    std::string entry = Json(item.key()).dump(-1, ' ', false, Json::error_handler_t::replace) +
                        ":" + item.value().dump(-1, ' ', false, Json::error_handler_t::replace);
    if (out.size() + (out.size() > 1 ? 1 : 0) + entry.size() + 1 > kMaxSampleBytes) break;
    if (out.size() > 1) out += ',';
    out += entry;
  }
  out += '}';
  return out;
}

GraphError local_error(long http_status, std::string message) {
  GraphError error;
  error.http_status = http_status;
  error.message = std::move(message);
  return error;
}

}  // namespace

std::optional<UploadAnswer> parse_upload_answer(std::string_view body) {
  Json document = parse_bounded_json(body);
  if (!document.is_object()) return std::nullopt;
  return UploadAnswer{integer_of(document, "num_received"),
                      integer_of(document, "num_invalid_entries"), capped_samples(document)};
}

Backoff::Backoff(std::int64_t base_ms, std::int64_t cap_ms, std::uint64_t seed)
    : base_ms_(base_ms), cap_ms_(cap_ms), random_(seed) {}

std::int64_t Backoff::delay_ms(int retry) {
  double span = static_cast<double>(base_ms_);
  for (int n = 1; n < retry && span < static_cast<double>(cap_ms_); ++n) span *= 2;
  span = std::min(span, static_cast<double>(cap_ms_));
  std::uniform_real_distribution<double> factor(0.5, 1.0);
  // ceil keeps the result inside [0.5, 1.0] * span for an integer span.
  return static_cast<std::int64_t>(std::ceil(span * factor(random_)));
}

std::int64_t retry_after_seconds(const Headers& headers, std::int64_t now_unix) noexcept {
  std::int64_t longest = 0;
  for (const auto& [name, value] : headers) {
    if (!equals_ignoring_case(name, "Retry-After")) continue;
    std::int64_t seconds = 0;
    if (!value.empty() && value.find_first_not_of("0123456789") == std::string::npos) {
      seconds = value.size() > 6 ? kMaxHeaderDelaySeconds : std::stoll(value);
    } else {
      time_t date = curl_getdate(value.c_str(), nullptr);  // an HTTP date, or -1
      if (date != -1) seconds = static_cast<std::int64_t>(date) - now_unix;
    }
    longest = std::max(longest, std::clamp<std::int64_t>(seconds, 0, kMaxHeaderDelaySeconds));
  }
  return longest;
}

struct Job {
  UploadOperation operation;
  std::string audience_id;
  UploadBatch batch;
  int attempts = 0;
  std::int64_t due_ms = 0;  // not sent before this time of the engine's clock
  CURL* curl = nullptr;     // while in flight
  bool final = false;       // reported in this poll; removed before it returns
  GraphRequest request;
};

// One audience's usersreplace session, while the engine holds batches of it.
struct ReplaceSession {
  bool batch1_succeeded = false;
  int in_flight = 0;
};

struct UploadEngine::State {
  GraphSettings settings;
  const Credentials& credentials;
  EngineSettings engine;
  AbortCheck should_abort;
  MonotonicMs clock;
  Backoff backoff;

  CURLM* multi = nullptr;
  std::vector<CURL*> spare_handles;
  std::vector<std::unique_ptr<Job>> jobs;  // unreported, in submission order
  std::map<std::string, ReplaceSession> sessions;
  std::vector<BatchOutcome> ready;

  std::int64_t blocked_until = 0;
  bool credential_dead = false;
  GraphError credential_error;
  bool aborted = false;
  int in_flight = 0;
  int max_in_flight_seen = 0;
  std::uint64_t requests_sent = 0;
  std::size_t body_bytes = 0;

  State(GraphSettings graph, const Credentials& creds, EngineSettings settings_in,
        AbortCheck abort_check, MonotonicMs clock_in)
      : settings(std::move(graph)),
        credentials(creds),
        engine(settings_in),
        should_abort(abort_check),
        clock(clock_in != nullptr ? clock_in : steady_now_ms),
        backoff(settings_in.base_delay_ms, settings_in.max_delay_ms,
                settings_in.jitter_seed != 0
                    ? settings_in.jitter_seed
                    : (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}()) {}

  ~State() {
    cancel_all();
    for (CURL* curl : spare_handles) curl_easy_cleanup(curl);
    if (multi != nullptr) curl_multi_cleanup(multi);
  }

  // Removes every transfer; a connection cut mid-request is closed by curl.
  void cancel_all() noexcept {
    for (auto& job : jobs) {
      if (job->curl == nullptr) continue;
      curl_multi_remove_handle(multi, job->curl);
      job->request.release(job->curl);
      curl_easy_cleanup(job->curl);
      job->curl = nullptr;
    }
    jobs.clear();
    sessions.clear();
    in_flight = 0;
    body_bytes = 0;
  }

  [[noreturn]] void abort_now() {
    cancel_all();
    ready.clear();
    aborted = true;
    throw GraphRequestError(GraphRequestError::Kind::Aborted, "Graph API upload cancelled");
  }

  void check_abort() {
    if (aborted || (should_abort != nullptr && should_abort())) abort_now();
  }

  // Another batch of the job's replace session not yet confirmed.
  bool session_has_other_pending(const Job& job) const {
    for (const auto& other : jobs)
      if (other.get() != &job && !other->final && other->operation == UploadOperation::Replace &&
          other->audience_id == job.audience_id)
        return true;
    return false;
  }

  // When the job may be sent, or -1 while something other than time holds it.
  std::int64_t sendable_at(const Job& job) const {
    if (job.final || job.curl != nullptr) return -1;
    if (job.operation == UploadOperation::Replace) {
      const ReplaceSession& session = sessions.at(job.audience_id);
      if (job.batch.batch_seq == 1) {
        if (session.in_flight > 0) return -1;
      } else if (!session.batch1_succeeded) {
        return -1;
      } else if (job.batch.last && (session.in_flight > 0 || session_has_other_pending(job))) {
        return -1;
      }
    }
    return std::max(job.due_ms, blocked_until);
  }

  void start(Job& job) {
    CURL* curl = nullptr;
    if (!spare_handles.empty()) {
      curl = spare_handles.back();
      spare_handles.pop_back();
    } else {
      curl = curl_easy_init();
      if (curl == nullptr) throw std::bad_alloc();
    }
    const char* method = job.operation == UploadOperation::Remove ? "DELETE" : "POST";
    std::string path = "/" + job.audience_id +
                       (job.operation == UploadOperation::Replace ? "/usersreplace" : "/users");
    try {
      job.request.prepare(curl, settings, credentials, method, path, {}, job.batch.body, nullptr);
    } catch (...) {
      spare_handles.push_back(curl);
      throw;
    }
    curl_easy_setopt(curl, CURLOPT_PRIVATE, static_cast<void*>(&job));
    if (job.operation == UploadOperation::Replace && job.batch.batch_seq == 1)
      curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);  // see the header comment
    if (curl_multi_add_handle(multi, curl) != CURLM_OK) {
      job.request.release(curl);
      spare_handles.push_back(curl);
      throw std::runtime_error("libcurl refused a transfer");
    }
    job.curl = curl;
    ++job.attempts;
    ++requests_sent;
    ++in_flight;
    max_in_flight_seen = std::max(max_in_flight_seen, in_flight);
    if (job.operation == UploadOperation::Replace) ++sessions.at(job.audience_id).in_flight;
  }

  bool start_due() {
    bool started = false;
    std::int64_t now = clock();
    for (auto& job : jobs) {
      std::int64_t at = sendable_at(*job);
      if (at < 0 || at > now) continue;
      start(*job);
      started = true;
    }
    return started;
  }

  void report(Job& job, bool succeeded, GraphError error, ErrorClass error_class,
              bool outcome_unknown, std::int64_t num_received = 0,
              std::int64_t num_invalid_entries = 0, std::string samples = {}) {
    BatchOutcome outcome;
    outcome.operation = job.operation;
    outcome.audience_id = job.audience_id;
    outcome.batch_seq = job.batch.batch_seq;
    outcome.rows = job.batch.rows;
    outcome.succeeded = succeeded;
    outcome.num_received = num_received;
    outcome.num_invalid_entries = num_invalid_entries;
    outcome.invalid_entry_samples = succeeded ? std::move(samples) : std::string();
    outcome.attempts = job.attempts;
    outcome.error = std::move(error);
    outcome.error_class = error_class;
    outcome.outcome_unknown = outcome_unknown;
    ready.push_back(std::move(outcome));

    job.final = true;
    body_bytes -= job.batch.body.size();
    std::string().swap(job.batch.body);  // the memory goes now, not when the job is swept

    // Only a batch that was sent fails the others: those failed here without
    // being sent are already part of such a cascade. A dead credential goes
    // first, so that every unsent batch says the token is the reason.
    if (succeeded || job.attempts == 0) {
      if (succeeded && job.operation == UploadOperation::Replace && job.batch.batch_seq == 1)
        sessions.at(job.audience_id).batch1_succeeded = true;
      return;
    }
    if (error_class == ErrorClass::ReAuth && !credential_dead) {
      credential_dead = true;
      credential_error = ready.back().error;
      fail_unsent_for_dead_credential();
    }
    if (job.operation == UploadOperation::Replace) fail_rest_of_session(job);
  }

  // A later batch of a failed replace would close the session on missing rows
  // (with last_batch_flag) or be refused: none is sent.
  void fail_rest_of_session(const Job& failed) {
    for (auto& job : jobs) {
      if (job->final || job->curl != nullptr || job->operation != UploadOperation::Replace ||
          job->audience_id != failed.audience_id)
        continue;
      report(*job, false,
             local_error(0, "not sent: batch " + std::to_string(failed.batch.batch_seq) +
                                " of this replace session failed"),
             ErrorClass::Session, false);
    }
  }

  // Reference 5.2, re-auth: stop every call with the credential.
  void fail_unsent_for_dead_credential() {
    for (auto& job : jobs) {
      if (job->final || job->curl != nullptr) continue;
      GraphError error = credential_error;
      error.message = "not sent: the access token was refused: " + error.message;
      report(*job, false, std::move(error), ErrorClass::ReAuth, false);
    }
  }

  void pause_for_headers(const Headers& headers, std::int64_t now) {
    std::int64_t seconds =
        std::max(regain_access_delay_seconds(headers),
                 retry_after_seconds(headers, static_cast<std::int64_t>(std::time(nullptr))));
    if (seconds > 0) blocked_until = std::max(blocked_until, now + seconds * 1000);
  }

  void finish(Job& job, CURLcode result, curl_off_t uploaded) {
    std::int64_t now = clock();
    GraphResponse& response = job.request.response();
    GraphError error;
    ErrorClass error_class = ErrorClass::Retry;
    bool unknown = false;
    if (result == CURLE_OK) {
      pause_for_headers(response.headers, now);
      if (response.ok()) {
        if (std::optional<UploadAnswer> answer = parse_upload_answer(response.body)) {
          report(job, true, {}, ErrorClass::Retry, false, answer->num_received,
                 answer->num_invalid_entries, std::move(answer->invalid_entry_samples));
          return;
        }
        // Applied or not, nobody can tell: as for a dropped answer.
        error = local_error(response.http_status, "HTTP " + std::to_string(response.http_status) +
                                                      " with a body that is not a JSON object");
        unknown = true;
      } else {
        error = api_error(response, credentials);
        error_class = classify(error);
      }
    } else {
      GraphRequestError failure = job.request.transfer_error(result, settings, credentials);
      error = local_error(0, failure.what());
      if (failure.kind() == GraphRequestError::Kind::TlsVerification)
        error_class = ErrorClass::Permanent;  // configuration, not luck
      // Sent in full but unanswered: the server may have applied it.
      unknown = uploaded >= static_cast<curl_off_t>(job.batch.body.size());
    }

    if (error_class != ErrorClass::Retry ||
        (job.operation == UploadOperation::Replace && job.batch.batch_seq == 1 && unknown) ||
        job.attempts >= engine.max_attempts) {
      report(job, false, std::move(error), error_class, unknown);
      return;
    }
    // Reference 5.3; a longer pause from the headers replaces the backoff.
    job.due_ms = std::max(now + backoff.delay_ms(job.attempts), blocked_until);
  }

  bool read_done() {
    bool finished = false;
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &left)) {
      if (message->msg != CURLMSG_DONE) continue;
      CURL* curl = message->easy_handle;
      CURLcode result = message->data.result;  // `message` dies with the removal
      void* job_pointer = nullptr;
      curl_easy_getinfo(curl, CURLINFO_PRIVATE, &job_pointer);
      curl_off_t uploaded = 0;
      curl_easy_getinfo(curl, CURLINFO_SIZE_UPLOAD_T, &uploaded);
      curl_multi_remove_handle(multi, curl);
      auto& job = *static_cast<Job*>(job_pointer);
      job.request.release(curl);
      job.curl = nullptr;
      spare_handles.push_back(curl);
      --in_flight;
      if (job.operation == UploadOperation::Replace) --sessions.at(job.audience_id).in_flight;
      finish(job, result, uploaded);
      finished = true;
    }
    return finished;
  }

  void sweep() {
    jobs.erase(std::remove_if(jobs.begin(), jobs.end(), [](const auto& job) { return job->final; }),
               jobs.end());
    for (auto session = sessions.begin(); session != sessions.end();) {
      bool held = std::any_of(jobs.begin(), jobs.end(), [&](const auto& job) {
        return job->operation == UploadOperation::Replace && job->audience_id == session->first;
      });
      session = held ? std::next(session) : sessions.erase(session);
    }
  }

  // Starts what is due, runs curl without waiting and handles what finished,
  // until nothing changes.
  void settle() {
    for (;;) {
      if (credential_dead) fail_unsent_for_dead_credential();
      bool started = start_due();
      int running = 0;
      CURLMcode code = curl_multi_perform(multi, &running);
      if (code != CURLM_OK)
        throw std::runtime_error(std::string("libcurl: ") + curl_multi_strerror(code));
      bool finished = read_done();
      sweep();
      if (!started && !finished) return;
    }
  }

  // How long poll() may wait for curl before something of ours is due.
  int wait_ms(std::int64_t remaining) const {
    std::int64_t wait = std::min<std::int64_t>(remaining, kAbortCheckIntervalMs);
    std::int64_t now = clock();
    for (const auto& job : jobs) {
      std::int64_t at = sendable_at(*job);
      if (at >= 0) wait = std::min(wait, std::max<std::int64_t>(at - now, 0));
    }
    return static_cast<int>(wait);
  }
};

UploadEngine::UploadEngine(GraphSettings settings, const Credentials& credentials,
                           EngineSettings engine, AbortCheck should_abort, MonotonicMs clock) {
  if (engine.max_in_flight < 1 || engine.max_in_flight > 64)
    throw InvalidArgument("connector.max_parallel_requests must be between 1 and 64");
  if (engine.max_attempts < 1) throw InvalidArgument("connector.max_retries must be 0 or more");
  if (engine.base_delay_ms < 0 || engine.max_delay_ms < engine.base_delay_ms)
    throw InvalidArgument("the retry delays must satisfy 0 <= base <= cap");
  initialize_curl();
  check_graph_settings(settings);
  state_ = std::make_unique<State>(std::move(settings), credentials, engine, should_abort, clock);
  state_->multi = curl_multi_init();
  if (state_->multi == nullptr) throw std::bad_alloc();
  curl_multi_setopt(state_->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                    static_cast<long>(engine.max_in_flight));
  curl_multi_setopt(state_->multi, CURLMOPT_MAXCONNECTS, static_cast<long>(engine.max_in_flight));
}

UploadEngine::~UploadEngine() = default;

bool UploadEngine::has_room() const noexcept {
  return !state_->aborted &&
         state_->jobs.size() < static_cast<std::size_t>(state_->engine.max_in_flight);
}

void UploadEngine::submit(UploadOperation operation, const std::string& audience_id,
                          UploadBatch batch) {
  State& state = *state_;
  if (state.aborted)
    throw GraphRequestError(GraphRequestError::Kind::Aborted, "Graph API upload cancelled");
  if (!has_room()) throw std::logic_error("UploadEngine::submit without room");
  if (!is_graph_id(audience_id))
    throw InvalidArgument("audience id \"" + audience_id + "\" is not a Graph object id");
  if (batch.body.empty()) throw InvalidArgument("an upload batch needs a JSON body");
  if (operation == UploadOperation::Replace) {
    if (batch.batch_seq < 1) throw InvalidArgument("a replace batch needs batch_seq >= 1");
    auto found = state.sessions.find(audience_id);
    if (found != state.sessions.end() && batch.batch_seq == 1)
      throw std::logic_error("a new replace session while batches of the last are unreported");
    if (found == state.sessions.end()) {
      // A batch > 1 without its batch 1 here continues a session whose batch
      // 1 the caller knows was accepted (reference 3.2, recovery).
      ReplaceSession session;
      session.batch1_succeeded = batch.batch_seq != 1;
      state.sessions.emplace(audience_id, session);
    }
  }
  auto job = std::make_unique<Job>();
  job->operation = operation;
  job->audience_id = audience_id;
  job->batch = std::move(batch);
  state.body_bytes += job->batch.body.size();
  state.jobs.push_back(std::move(job));
}

std::vector<BatchOutcome> UploadEngine::poll(int timeout_ms) {
  State& state = *state_;
  state.check_abort();
  std::int64_t deadline = steady_now_ms() + std::max(timeout_ms, 0);
  try {
    for (;;) {
      state.settle();
      if (!state.ready.empty() || state.jobs.empty()) break;
      std::int64_t remaining = deadline - steady_now_ms();
      if (remaining <= 0) break;
      CURLMcode code = curl_multi_poll(state.multi, nullptr, 0, state.wait_ms(remaining), nullptr);
      if (code != CURLM_OK)
        throw std::runtime_error(std::string("libcurl: ") + curl_multi_strerror(code));
      state.check_abort();
    }
  } catch (const GraphRequestError&) {
    throw;
  } catch (...) {
    // The engine's state is no longer trustworthy: nothing more is sent.
    state.cancel_all();
    state.ready.clear();
    state.aborted = true;
    throw;
  }
  std::vector<BatchOutcome> outcomes;
  outcomes.swap(state.ready);
  return outcomes;
}

bool UploadEngine::idle() const noexcept { return state_->jobs.empty(); }

std::int64_t UploadEngine::blocked_until_ms() const noexcept {
  return state_->blocked_until > state_->clock() ? state_->blocked_until : 0;
}

int UploadEngine::max_in_flight_seen() const noexcept { return state_->max_in_flight_seen; }

std::uint64_t UploadEngine::requests_sent() const noexcept { return state_->requests_sent; }

std::size_t UploadEngine::body_bytes_held() const noexcept { return state_->body_bytes; }

}  // namespace connector
