// The upload engine against the real Graph API simulator (a subprocess on a
// free loopback port, configured through /_sim/), and its backoff, header and
// bookkeeping rules on their own. The simulator is found through
// CONNECTOR_SOURCE_DIR, else by walking up from the working directory, else
// from this source file's compiled-in path.

#include "graph/upload_engine.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "errors.hpp"
#include "export/export_sender.hpp"
#include "graph/graph_request.hpp"
#include "identifiers/sha256_hex.hpp"

namespace connector {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kToken = "T";
constexpr const char* kAccount = "act_1";

std::int64_t elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

std::filesystem::path repository_root() {
  if (const char* configured = std::getenv("CONNECTOR_SOURCE_DIR"))
    return std::filesystem::path(configured);
  // From the working directory (ctest runs in a build directory inside the
  // repository), then from where this file was compiled (a build elsewhere).
  for (auto start : {std::filesystem::current_path(), std::filesystem::path(__FILE__)}) {
    for (auto dir = start; !dir.empty(); dir = dir.parent_path()) {
      if (std::filesystem::exists(dir / "test/graph_sim/graph_sim.py")) return dir;
      if (dir == dir.parent_path()) break;
    }
  }
  throw std::runtime_error(
      "test/graph_sim/graph_sim.py not found: set CONNECTOR_SOURCE_DIR or run from the repository");
}

// The simulator as a child process; it dies with the test binary (PDEATHSIG)
// even when a test crashes.
class Simulator {
 public:
  Simulator() {
    std::string script = (repository_root() / "test/graph_sim/graph_sim.py").string();
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      dup2(out[1], STDOUT_FILENO);
      execlp("python3", "python3", script.c_str(), "--port", "0", "--token", kToken, "--ad-account",
             kAccount, static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    stdout_ = out[0];
    std::string line;
    auto started = Clock::now();
    while (line.find('\n') == std::string::npos) {
      pollfd ready{stdout_, POLLIN, 0};
      if (elapsed_ms(started) > 15000 || ::poll(&ready, 1, 200) < 0) break;
      char buffer[256];
      if ((ready.revents & (POLLIN | POLLHUP)) == 0) continue;
      ssize_t got = read(stdout_, buffer, sizeof buffer);
      if (got <= 0) break;
      line.append(buffer, static_cast<std::size_t>(got));
    }
    if (line.rfind("READY port=", 0) != 0) {
      stop();
      throw std::runtime_error("the simulator did not start: " + line);
    }
    port_ = std::stoi(line.substr(11));
  }
  ~Simulator() { stop(); }

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // A control call under /_sim/ (no token); the answer as JSON.
  Json call(const char* method, const std::string& path, const std::string& body = {},
            const std::string& token = {}) const {
    CURL* curl = curl_easy_init();
    std::string url = base_url() + path;
    std::string answer;
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    std::string authorization = "Authorization: Bearer " + token;
    if (!token.empty()) headers = curl_slist_append(headers, authorization.c_str());
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (!body.empty()) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(
        curl, CURLOPT_WRITEFUNCTION,
        +[](char* data, std::size_t size, std::size_t count, void* user) {
          static_cast<std::string*>(user)->append(data, size * count);
          return size * count;
        });
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    CURLcode result = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (result != CURLE_OK) throw std::runtime_error("simulator call failed: " + path);
    return Json::parse(answer);
  }

  void configure(const Json& document) const {
    Json answer = call("POST", "/_sim/config", document.dump());
    if (answer.contains("error")) throw std::runtime_error("bad config: " + answer.dump());
  }

 private:
  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      auto started = Clock::now();
      while (waitpid(pid_, &status, WNOHANG) == 0) {
        if (elapsed_ms(started) > 5000) {
          kill(pid_, SIGKILL);
          waitpid(pid_, &status, 0);
          break;
        }
        usleep(10'000);
      }
      pid_ = -1;
    }
    if (stdout_ >= 0) close(stdout_);
    stdout_ = -1;
  }

  pid_t pid_ = -1;
  int stdout_ = -1;
  int port_ = 0;
};

std::string email_hash(int person) {
  char out[sha256_hex_length];
  sha256_hex("person" + std::to_string(person) + "@example.com", out);
  return std::string(out, sha256_hex_length);
}

Json email_rows(int first, int count) {
  Json data = Json::array();
  for (int person = first; person < first + count; ++person) data.push_back({email_hash(person)});
  return data;
}

// A body as the exporter builds it: payload and session.
UploadBatch make_batch(std::uint64_t session_id, std::uint64_t batch_seq, bool last, int first,
                       int rows, int total) {
  Json body = {
      {"payload", {{"schema", {"EMAIL"}}, {"is_raw", true}, {"data", email_rows(first, rows)}}},
      {"session",
       {{"session_id", session_id},
        {"batch_seq", batch_seq},
        {"last_batch_flag", last},
        {"estimated_num_total", total}}}};
  UploadBatch batch;
  batch.batch_seq = batch_seq;
  batch.last = last;
  batch.rows = static_cast<std::size_t>(rows);
  batch.body = body.dump();
  return batch;
}

std::atomic<bool> abort_requested{false};
std::atomic<std::int64_t> abort_at_ms{0};  // 0: never
bool should_abort() {
  if (abort_requested.load()) return true;
  std::int64_t at = abort_at_ms.load();
  return at != 0 &&
         std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
                 .count() >= at;
}

std::atomic<std::int64_t> fake_now{1'000'000};
std::int64_t fake_clock() { return fake_now.load(); }

EngineSettings quick_engine(int max_in_flight = 4) {
  EngineSettings engine;
  engine.max_in_flight = max_in_flight;
  engine.base_delay_ms = 20;
  engine.max_delay_ms = 200;
  engine.jitter_seed = 42;
  return engine;
}

// Polls until the engine is idle; fails the test rather than hanging.
std::vector<BatchOutcome> drain(UploadEngine& engine, int limit_ms = 8000) {
  std::vector<BatchOutcome> all;
  auto started = Clock::now();
  while (!engine.idle()) {
    if (elapsed_ms(started) > limit_ms) {
      ADD_FAILURE() << "the engine did not finish within " << limit_ms << " ms";
      break;
    }
    for (auto& outcome : engine.poll(100)) all.push_back(std::move(outcome));
  }
  return all;
}

const BatchOutcome& outcome_of(const std::vector<BatchOutcome>& outcomes, std::uint64_t seq) {
  for (const auto& outcome : outcomes)
    if (outcome.batch_seq == seq) return outcome;
  throw std::runtime_error("no outcome for batch " + std::to_string(seq));
}

class UploadEngineSim : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { simulator_ = new Simulator(); }
  static void TearDownTestSuite() {
    delete simulator_;
    simulator_ = nullptr;
  }

  void SetUp() override {
    abort_requested = false;
    abort_at_ms = 0;
    sim().call("POST", "/_sim/reset");
    settings_.base_url = sim().base_url();
    credentials_.access_token = kToken;
  }

  static Simulator& sim() { return *simulator_; }

  std::string create_audience(const std::string& name) {
    GraphClient client(settings_, credentials_, nullptr);
    GraphResponse response = client.send(
        "POST", std::string("/") + kAccount + "/customaudiences",
        {{"name", name}, {"subtype", "CUSTOM"}, {"customer_file_source", "USER_PROVIDED_ONLY"}});
    return Json::parse(response.body).at("id").get<std::string>();
  }

  Json stats() { return sim().call("GET", "/_sim/stats"); }

  int endpoint_requests(const std::string& endpoint) {
    Json all = stats().at("endpoints");
    return all.contains(endpoint) ? all.at(endpoint).at("requests").get<int>() : 0;
  }

  Json compare(const std::string& audience, int first, int count) {
    Json expected = {{"schema", {"EMAIL"}}, {"data", email_rows(first, count)}};
    return sim().call("POST", "/_sim/audiences/" + audience + "/compare", expected.dump());
  }

  Json replace_sessions(const std::string& audience) {
    return sim().call("GET", "/_sim/sessions?audience_id=" + audience).at("sessions");
  }

  void add_fault(const Json& rule) { sim().configure({{"faults", {rule}}}); }

  static Simulator* simulator_;
  GraphSettings settings_;
  Credentials credentials_;
};

Simulator* UploadEngineSim::simulator_ = nullptr;

TEST_F(UploadEngineSim, TwentyFiveAddBatchesReachTheAudienceWithBoundedParallelism) {
  std::string audience = create_audience("add-25");
  add_fault({{"kind", "latency"}, {"ms", 40}, {"endpoint", "/{audience_id}/users"}});
  UploadEngine engine(settings_, credentials_, quick_engine(4), should_abort);
  constexpr int kBatches = 25;
  constexpr int kRows = 200;
  std::vector<BatchOutcome> outcomes;
  int next = 1;
  auto started = Clock::now();
  while ((next <= kBatches || !engine.idle()) && elapsed_ms(started) < 15000) {
    while (next <= kBatches && engine.has_room()) {
      engine.submit(UploadOperation::Add, audience,
                    make_batch(77, static_cast<std::uint64_t>(next), next == kBatches,
                               (next - 1) * kRows, kRows, kBatches * kRows));
      ++next;
    }
    for (auto& outcome : engine.poll(100)) outcomes.push_back(std::move(outcome));
  }
  ASSERT_EQ(outcomes.size(), static_cast<std::size_t>(kBatches));
  std::int64_t most_received = 0;
  for (const auto& outcome : outcomes) {
    EXPECT_TRUE(outcome.succeeded) << outcome.batch_seq << ": " << outcome.error.message;
    EXPECT_EQ(outcome.attempts, 1);
    EXPECT_EQ(outcome.num_invalid_entries, 0);
    EXPECT_EQ(outcome.invalid_entry_samples, "{}");
    most_received = std::max(most_received, outcome.num_received);
  }
  EXPECT_EQ(most_received, kBatches * kRows);  // the session's running total
  Json result = compare(audience, 0, kBatches * kRows);
  EXPECT_TRUE(result.at("equal").get<bool>()) << result.dump();
  Json counters = stats();
  EXPECT_LE(counters.at("max_in_flight").get<int>(), 4);
  EXPECT_GE(counters.at("max_in_flight").get<int>(), 2);
  EXPECT_LE(engine.max_in_flight_seen(), 4);
  EXPECT_EQ(counters.at("payload_in_query_requests").get<int>(), 0);
  EXPECT_EQ(counters.at("token_in_query_requests").get<int>(), 0);
  EXPECT_EQ(engine.requests_sent(), static_cast<std::uint64_t>(kBatches));
}

TEST_F(UploadEngineSim, RemoveSendsDeleteWithTheBodyAndReportsInvalidSamples) {
  std::string audience = create_audience("remove");
  UploadEngine engine(settings_, credentials_, quick_engine(), should_abort);
  engine.submit(UploadOperation::Add, audience, make_batch(1, 1, true, 0, 50, 50));
  ASSERT_TRUE(drain(engine).at(0).succeeded);

  UploadBatch removal = make_batch(2, 1, true, 0, 20, 20);
  Json body = Json::parse(removal.body);
  body["payload"]["data"].push_back({"NOT-A-HASH"});
  removal.body = body.dump();
  engine.submit(UploadOperation::Remove, audience, std::move(removal));
  auto outcomes = drain(engine);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].succeeded) << outcomes[0].error.message;
  EXPECT_EQ(outcomes[0].operation, UploadOperation::Remove);
  EXPECT_EQ(outcomes[0].num_invalid_entries, 1);
  Json samples = Json::parse(outcomes[0].invalid_entry_samples);
  EXPECT_TRUE(samples.contains("NOT-A-HASH")) << outcomes[0].invalid_entry_samples;
  Json result = compare(audience, 20, 30);
  EXPECT_TRUE(result.at("equal").get<bool>()) << result.dump();
  Json requests = stats().at("endpoints").at("DELETE /{audience_id}/users");
  EXPECT_EQ(requests.at("requests").get<int>(), 1);
  EXPECT_EQ(stats().at("payload_in_query_requests").get<int>(), 0);
}

TEST_F(UploadEngineSim, InvalidEntrySamplesAreCappedAndStayAJsonObject) {
  std::string audience = create_audience("invalid");
  UploadBatch batch = make_batch(4, 1, true, 0, 10, 160);
  Json body = Json::parse(batch.body);
  for (int bad = 0; bad < 150; ++bad)
    body["payload"]["data"].push_back(
        {"not-a-digest-" + std::to_string(bad) + std::string(50, 'x')});
  batch.body = body.dump();
  UploadEngine engine(settings_, credentials_, quick_engine(), should_abort);
  engine.submit(UploadOperation::Add, audience, std::move(batch));
  auto outcomes = drain(engine);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].succeeded);
  EXPECT_EQ(outcomes[0].num_invalid_entries, 150);
  const std::string& samples = outcomes[0].invalid_entry_samples;
  EXPECT_LE(samples.size(), 4096u);
  EXPECT_GT(samples.size(), 3000u);  // filled, not emptied, by the cap
  Json parsed = Json::parse(samples);
  EXPECT_TRUE(parsed.is_object());
  EXPECT_GT(parsed.size(), 10u);
  EXPECT_LT(parsed.size(), 100u);  // the simulator sent 100
}

TEST_F(UploadEngineSim, ThrottlingIsRetriedAfterTheRegainTimeAndPausesEverySend) {
  std::string audience = create_audience("throttled");
  // 0.01 minutes: the header asks for 0.6 s, which the engine rounds up to 1 s.
  add_fault({{"kind", "throttle"},
             {"code", 80003},
             {"count", 1},
             {"method", "POST"},
             {"endpoint", "/{audience_id}/users"},
             {"regain_minutes", 0.01}});
  UploadEngine engine(settings_, credentials_, quick_engine(2), should_abort);
  engine.submit(UploadOperation::Add, audience, make_batch(5, 1, false, 0, 10, 20));
  auto started = Clock::now();
  while (engine.blocked_until_ms() == 0 && elapsed_ms(started) < 3000) {
    ASSERT_TRUE(engine.poll(20).empty());
  }
  ASSERT_NE(engine.blocked_until_ms(), 0);

  // A batch submitted during the pause waits too: one budget per ad account.
  engine.submit(UploadOperation::Add, audience, make_batch(5, 2, true, 10, 10, 20));
  auto paused = Clock::now();
  while (elapsed_ms(paused) < 300) EXPECT_TRUE(engine.poll(50).empty());
  EXPECT_EQ(engine.requests_sent(), 1u);
  EXPECT_EQ(endpoint_requests("POST /{audience_id}/users"), 1);

  auto outcomes = drain(engine);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_TRUE(outcome_of(outcomes, 1).succeeded);
  EXPECT_EQ(outcome_of(outcomes, 1).attempts, 2);
  EXPECT_TRUE(outcome_of(outcomes, 2).succeeded);
  EXPECT_EQ(outcome_of(outcomes, 2).attempts, 1);
  EXPECT_EQ(engine.blocked_until_ms(), 0);

  Json log = sim().call("GET", "/_sim/requests?limit=10").at("requests");
  std::vector<double> times;
  for (const auto& entry : log)
    if (entry.at("path") == "/{audience_id}/users") times.push_back(entry.at("time").get<double>());
  ASSERT_EQ(times.size(), 3u);
  EXPECT_EQ(log.at(log.size() - 3).at("code").get<int>(), 80003);
  EXPECT_GE(times[1] - times[0], 0.95);  // nothing at all was sent for the regain time
  EXPECT_GE(times[2] - times[0], 0.95);
  EXPECT_TRUE(compare(audience, 0, 20).at("equal").get<bool>());
}

TEST_F(UploadEngineSim, ServerErrorsAndHtmlPagesAreRetried) {
  std::string audience = create_audience("server-errors");
  add_fault({{"kind", "server_error"}, {"count", 2}, {"endpoint", "/{audience_id}/users"}});
  add_fault({{"kind", "html_error"}, {"count", 1}, {"endpoint", "/{audience_id}/users"}});
  UploadEngine engine(settings_, credentials_, quick_engine(), should_abort);
  engine.submit(UploadOperation::Add, audience, make_batch(9, 1, true, 0, 10, 10));
  auto outcomes = drain(engine);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].succeeded) << outcomes[0].error.message;
  EXPECT_EQ(outcomes[0].attempts, 4);
  EXPECT_TRUE(compare(audience, 0, 10).at("equal").get<bool>());
}

TEST_F(UploadEngineSim, RetriesStopAtMaxAttempts) {
  std::string audience = create_audience("always-failing");
  add_fault({{"kind", "server_error"}, {"endpoint", "/{audience_id}/users"}});
  EngineSettings settings = quick_engine();
  settings.max_attempts = 3;
  UploadEngine engine(settings_, credentials_, settings, should_abort);
  engine.submit(UploadOperation::Add, audience, make_batch(9, 1, true, 0, 10, 10));
  auto outcomes = drain(engine);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_FALSE(outcomes[0].succeeded);
  EXPECT_EQ(outcomes[0].attempts, 3);
  EXPECT_EQ(outcomes[0].error_class, ErrorClass::Retry);
  EXPECT_EQ(outcomes[0].error.http_status, 500);
  EXPECT_EQ(outcomes[0].error.code, 2);
  EXPECT_FALSE(outcomes[0].outcome_unknown);
  EXPECT_EQ(endpoint_requests("POST /{audience_id}/users"), 3);
}

TEST_F(UploadEngineSim, ExpiredTokenFailsAtOnceWithReAuthAndStopsEverySend) {
  std::string audience = create_audience("expiring");
  sim().configure({{"tokens",
                    {{{"token", "T2"},
                      {"user_id", "100000000000001"},
                      {"scopes", {"ads_management", "ads_read"}},
                      {"expires_after_requests", 2}}}}});
  Credentials expiring;
  expiring.access_token = "T2";
  UploadEngine engine(settings_, expiring, quick_engine(), should_abort);
  for (std::uint64_t seq = 1; seq <= 3; ++seq)
    engine.submit(UploadOperation::Add, audience,
                  make_batch(3, seq, seq == 3, static_cast<int>(seq) * 10, 10, 30));
  auto outcomes = drain(engine);
  ASSERT_EQ(outcomes.size(), 3u);
  int succeeded = 0;
  for (const auto& outcome : outcomes) {
    if (outcome.succeeded) {
      ++succeeded;
      continue;
    }
    EXPECT_EQ(outcome.error_class, ErrorClass::ReAuth);
    EXPECT_EQ(outcome.error.code, 190);
    EXPECT_EQ(outcome.error.subcode, 463);
    EXPECT_EQ(outcome.attempts, 1);
    EXPECT_EQ(outcome.error.message.find("T2"), std::string::npos);
  }
  EXPECT_EQ(succeeded, 2);

  // The credential is dead: later batches fail without a request.
  engine.submit(UploadOperation::Add, audience, make_batch(3, 4, true, 40, 10, 40));
  outcomes = drain(engine);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_FALSE(outcomes[0].succeeded);
  EXPECT_EQ(outcomes[0].error_class, ErrorClass::ReAuth);
  EXPECT_EQ(outcomes[0].attempts, 0);
  EXPECT_EQ(engine.requests_sent(), 3u);
  EXPECT_EQ(endpoint_requests("POST /{audience_id}/users"), 3);
}

// R3, R4, R6: batch 1 alone; then the middle batches as many at once as the
// engine allows; the batch with last_batch_flag alone, after all the others.
TEST_F(UploadEngineSim, ReplaceSendsBatchOneAloneThenTheMiddleInParallelThenTheLastAlone) {
  std::string audience = create_audience("replace");
  add_fault({{"kind", "latency"}, {"ms", 40}, {"endpoint", "/{audience_id}/usersreplace"}});
  UploadEngine engine(settings_, credentials_, quick_engine(4), should_abort);
  constexpr int kBatches = 8;
  constexpr int kRows = 100;
  std::vector<BatchOutcome> outcomes;
  int next = 1;
  auto started = Clock::now();
  while ((next <= kBatches || !engine.idle()) && elapsed_ms(started) < 15000) {
    while (next <= kBatches && engine.has_room()) {
      engine.submit(UploadOperation::Replace, audience,
                    make_batch(4242, static_cast<std::uint64_t>(next), next == kBatches,
                               (next - 1) * kRows, kRows, kBatches * kRows));
      ++next;
    }
    for (auto& outcome : engine.poll(100)) outcomes.push_back(std::move(outcome));
  }
  ASSERT_EQ(outcomes.size(), static_cast<std::size_t>(kBatches));
  for (const auto& outcome : outcomes)
    EXPECT_TRUE(outcome.succeeded) << outcome.batch_seq << ": " << outcome.error.message;
  EXPECT_EQ(outcomes.front().batch_seq, 1u);
  EXPECT_EQ(outcomes.back().batch_seq, static_cast<std::uint64_t>(kBatches));
  Json sessions = replace_sessions(audience);
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].at("outcome"), "finished");
  EXPECT_EQ(sessions[0].at("restarts").get<int>(), 0);
  std::vector<int> order;
  for (const auto& batch : sessions[0].at("batches")) {
    order.push_back(batch.at("batch_seq").get<int>());
    EXPECT_EQ(batch.at("result"), "accepted");
  }
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kBatches));
  EXPECT_EQ(order.front(), 1);
  EXPECT_EQ(order.back(), kBatches);
  EXPECT_GE(engine.max_in_flight_seen(), 2);  // the middle went in parallel
  EXPECT_LE(stats().at("max_in_flight").get<int>(), 4);
  EXPECT_TRUE(compare(audience, 0, kBatches * kRows).at("equal").get<bool>());
}

// A middle batch that fails and is retried still comes before the last one,
// which goes exactly once, when every other batch was confirmed.
TEST_F(UploadEngineSim, ReplaceLastBatchWaitsForRetriedMiddleBatches) {
  std::string audience = create_audience("replace-retried");
  UploadEngine engine(settings_, credentials_, quick_engine(4), should_abort);
  engine.submit(UploadOperation::Replace, audience, make_batch(5151, 1, false, 0, 100, 500));
  auto first = drain(engine);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(first[0].succeeded) << first[0].error.message;
  add_fault({{"kind", "server_error"}, {"count", 2}, {"endpoint", "/{audience_id}/usersreplace"}});
  for (std::uint64_t seq = 2; seq <= 5; ++seq)
    engine.submit(UploadOperation::Replace, audience,
                  make_batch(5151, seq, seq == 5, static_cast<int>(seq - 1) * 100, 100, 500));
  auto rest = drain(engine);
  ASSERT_EQ(rest.size(), 4u);
  int retried = 0;
  for (const auto& outcome : rest) {
    EXPECT_TRUE(outcome.succeeded) << outcome.batch_seq << ": " << outcome.error.message;
    retried += outcome.attempts - 1;
  }
  EXPECT_EQ(retried, 2);
  Json sessions = replace_sessions(audience);
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].at("outcome"), "finished");
  const Json& batches = sessions[0].at("batches");
  ASSERT_FALSE(batches.empty());
  EXPECT_EQ(batches.back().at("batch_seq").get<int>(), 5);
  int last_sent = 0;
  for (const auto& batch : batches) last_sent += batch.at("batch_seq").get<int>() == 5 ? 1 : 0;
  EXPECT_EQ(last_sent, 1);
  EXPECT_TRUE(compare(audience, 0, 500).at("equal").get<bool>());
}

TEST_F(UploadEngineSim, ReplaceBatchOneWithoutAnAnswerIsReportedUnknownAndNeverResent) {
  std::string audience = create_audience("replace-dropped");
  std::string other = create_audience("warm-up");
  UploadEngine engine(settings_, credentials_, quick_engine(4), should_abort);
  // Connections in the pool first: on a reused connection that dies
  // unanswered, libcurl itself would send the request again.
  for (std::uint64_t seq = 1; seq <= 3; ++seq)
    engine.submit(UploadOperation::Add, other, make_batch(8, seq, seq == 3, 0, 10, 30));
  for (const auto& outcome : drain(engine)) ASSERT_TRUE(outcome.succeeded);

  add_fault({{"kind", "drop_after"}, {"count", 1}, {"endpoint", "/{audience_id}/usersreplace"}});
  for (std::uint64_t seq = 1; seq <= 3; ++seq)
    engine.submit(UploadOperation::Replace, audience,
                  make_batch(99, seq, seq == 3, static_cast<int>(seq - 1) * 10, 10, 30));
  auto outcomes = drain(engine);
  ASSERT_EQ(outcomes.size(), 3u);
  const BatchOutcome& first = outcome_of(outcomes, 1);
  EXPECT_FALSE(first.succeeded);
  EXPECT_TRUE(first.outcome_unknown);
  EXPECT_EQ(first.attempts, 1);
  EXPECT_EQ(first.error.http_status, 0);
  for (std::uint64_t seq : {2u, 3u}) {
    const BatchOutcome& later = outcome_of(outcomes, seq);
    EXPECT_FALSE(later.succeeded);
    EXPECT_EQ(later.attempts, 0);
    EXPECT_EQ(later.error_class, ErrorClass::Session);
    EXPECT_FALSE(later.outcome_unknown);
  }
  EXPECT_EQ(endpoint_requests("POST /{audience_id}/usersreplace"), 1);
  EXPECT_EQ(stats().at("dropped_connections").get<int>(), 1);
  Json sessions = replace_sessions(audience);
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].at("restarts").get<int>(), 0);
  EXPECT_EQ(sessions[0].at("batches").size(), 1u);
}

TEST_F(UploadEngineSim, ReplaceLaterBatchDroppedBeforeApplyingIsResent) {
  std::string audience = create_audience("replace-retry");
  UploadEngine engine(settings_, credentials_, quick_engine(4), should_abort);
  engine.submit(UploadOperation::Replace, audience, make_batch(123, 1, false, 0, 10, 30));
  ASSERT_TRUE(drain(engine).at(0).succeeded);

  // Two drops: should libcurl resend once on its own (a reused connection),
  // the engine still has to resend the second time.
  add_fault({{"kind", "drop_before"}, {"count", 2}, {"endpoint", "/{audience_id}/usersreplace"}});
  engine.submit(UploadOperation::Replace, audience, make_batch(123, 2, false, 10, 10, 30));
  engine.submit(UploadOperation::Replace, audience, make_batch(123, 3, true, 20, 10, 30));
  auto outcomes = drain(engine);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_TRUE(outcome_of(outcomes, 2).succeeded) << outcome_of(outcomes, 2).error.message;
  EXPECT_GE(outcome_of(outcomes, 2).attempts, 2);
  EXPECT_TRUE(outcome_of(outcomes, 3).succeeded);
  EXPECT_EQ(outcome_of(outcomes, 3).attempts, 1);
  EXPECT_EQ(stats().at("dropped_connections").get<int>(), 2);
  Json sessions = replace_sessions(audience);
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].at("outcome"), "finished");
  EXPECT_TRUE(compare(audience, 0, 30).at("equal").get<bool>());
}

TEST_F(UploadEngineSim, UpdateInProgressIsRetriedWithBackoff) {
  std::string audience = create_audience("busy");
  // A replace opened by someone else: /users writes get 2650/1870145 until it ends.
  UploadBatch opening = make_batch(555, 1, false, 0, 5, 10);
  sim().call("POST", "/v26.0/" + audience + "/usersreplace", opening.body, kToken);

  EngineSettings settings = quick_engine();
  settings.base_delay_ms = 100;
  settings.max_delay_ms = 400;
  UploadEngine engine(settings_, credentials_, settings, should_abort);
  engine.submit(UploadOperation::Add, audience, make_batch(556, 1, true, 100, 5, 5));
  auto started = Clock::now();
  while (engine.requests_sent() < 2 && elapsed_ms(started) < 3000)
    ASSERT_TRUE(engine.poll(50).empty());
  ASSERT_GE(engine.requests_sent(), 2u);
  UploadBatch closing = make_batch(555, 2, true, 5, 5, 10);
  sim().call("POST", "/v26.0/" + audience + "/usersreplace", closing.body, kToken);

  auto outcomes = drain(engine);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].succeeded) << outcomes[0].error.message;
  EXPECT_GE(outcomes[0].attempts, 3);
  Json statuses = stats().at("endpoints").at("POST /{audience_id}/users").at("statuses");
  EXPECT_GE(statuses.at("400").get<int>(), 2);
  EXPECT_EQ(statuses.at("200").get<int>(), 1);
}

TEST_F(UploadEngineSim, AbortStopsAPollPromptly) {
  std::string audience = create_audience("aborted");
  add_fault({{"kind", "latency"}, {"ms", 5000}, {"endpoint", "/{audience_id}/users"}});
  UploadEngine engine(settings_, credentials_, quick_engine(), should_abort);
  engine.submit(UploadOperation::Add, audience, make_batch(1, 1, false, 0, 10, 20));
  engine.submit(UploadOperation::Add, audience, make_batch(1, 2, true, 10, 10, 20));
  EXPECT_TRUE(engine.poll(200).empty());
  EXPECT_EQ(engine.requests_sent(), 2u);

  auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
          .count();
  abort_at_ms = now_ms + 200;  // turns true in the middle of the next poll
  auto started = Clock::now();
  try {
    engine.poll(10000);
    ADD_FAILURE() << "poll returned instead of throwing";
  } catch (const GraphRequestError& error) {
    EXPECT_EQ(error.kind(), GraphRequestError::Kind::Aborted);
  }
  EXPECT_LT(elapsed_ms(started), 200 + 1000);
  EXPECT_TRUE(engine.idle());
  EXPECT_FALSE(engine.has_room());
  EXPECT_EQ(engine.body_bytes_held(), 0u);
  abort_at_ms = 0;
  EXPECT_THROW(engine.poll(0), GraphRequestError);  // the engine stays stopped
}

TEST_F(UploadEngineSim, BodiesAreHeldOnlyUntilTheirBatchIsFinal) {
  std::string audience = create_audience("memory");
  add_fault({{"kind", "latency"}, {"ms", 150}, {"jitter_ms", 150}});
  UploadEngine engine(settings_, credentials_, quick_engine(3), should_abort);
  EXPECT_TRUE(engine.idle());
  auto started = Clock::now();
  EXPECT_TRUE(engine.poll(5000).empty());  // idle: returns at once
  EXPECT_LT(elapsed_ms(started), 100);

  std::map<std::uint64_t, std::size_t> held;
  std::size_t total = 0;
  for (std::uint64_t seq = 1; seq <= 3; ++seq) {
    UploadBatch batch = make_batch(6, seq, seq == 3, static_cast<int>(seq) * 1000, 1000, 3000);
    held[seq] = batch.body.size();
    total += batch.body.size();
    engine.submit(UploadOperation::Add, audience, std::move(batch));
  }
  EXPECT_FALSE(engine.has_room());
  EXPECT_FALSE(engine.idle());
  EXPECT_EQ(engine.body_bytes_held(), total);
  EXPECT_GT(total, 3u * 60'000);
  EXPECT_THROW(engine.submit(UploadOperation::Add, audience, make_batch(6, 4, true, 0, 1, 1)),
               std::logic_error);

  started = Clock::now();
  while (!engine.idle() && elapsed_ms(started) < 5000) {
    for (const auto& outcome : engine.poll(100)) {
      EXPECT_TRUE(outcome.succeeded);
      total -= held.at(outcome.batch_seq);
      EXPECT_TRUE(engine.has_room());
    }
    EXPECT_EQ(engine.body_bytes_held(), total);
  }
  EXPECT_TRUE(engine.idle());
  EXPECT_TRUE(engine.has_room());
  EXPECT_EQ(engine.body_bytes_held(), 0u);
}

TEST_F(UploadEngineSim, AppSecretProofOnEveryAttemptAndTheTokenOnlyInTheHeader) {
  std::string audience = create_audience("proof");
  sim().configure({{"settings", {{"app_secret", "s3cret-value"}}}});
  add_fault({{"kind", "server_error"}, {"count", 1}, {"endpoint", "/{audience_id}/users"}});
  Credentials with_secret;
  with_secret.access_token = kToken;
  with_secret.app_secret = "s3cret-value";
  UploadEngine engine(settings_, with_secret, quick_engine(), should_abort);
  engine.submit(UploadOperation::Add, audience, make_batch(2, 1, true, 0, 10, 10));
  auto outcomes = drain(engine);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].succeeded) << outcomes[0].error.message;
  EXPECT_EQ(outcomes[0].attempts, 2);
  Json log = sim().call("GET", "/_sim/requests?limit=10").at("requests");
  for (const auto& entry : log) {
    if (entry.at("path") != "/{audience_id}/users") continue;
    EXPECT_EQ(entry.at("token_source"), "header");
    EXPECT_FALSE(entry.at("payload_in_query").get<bool>());
  }

  // A wrong secret: the proof is refused (100, permanent) at once.
  Credentials wrong;
  wrong.access_token = kToken;
  wrong.app_secret = "not-the-secret";
  UploadEngine refused(settings_, wrong, quick_engine(), should_abort);
  refused.submit(UploadOperation::Add, audience, make_batch(2, 1, true, 0, 10, 10));
  outcomes = drain(refused);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_FALSE(outcomes[0].succeeded);
  EXPECT_EQ(outcomes[0].error_class, ErrorClass::Permanent);
  EXPECT_EQ(outcomes[0].attempts, 1);
  EXPECT_EQ(outcomes[0].error.message.find("not-the-secret"), std::string::npos);
}

// --- without the simulator ----------------------------------------------------

// The sender builds each batch's body (members hashed into JSON) on a thread
// of its own; batches still reach the engine in order, so that a replace
// session keeps its rules, and each member arrives as the hash of its e-mail.
TEST_F(UploadEngineSim, SenderBuildsBodiesOnItsOwnThreadAndSubmitsThemInOrder) {
  std::string audience = create_audience("sender-replace");
  add_fault({{"kind", "latency"}, {"ms", 20}, {"endpoint", "/{audience_id}/usersreplace"}});
  UploadEngine engine(settings_, credentials_, quick_engine(4), should_abort);
  ExportMapping mapping = resolve_mapping("s", {"email"}, "", "");
  MemberFormat format(mapping);
  SenderSettings settings;
  settings.operation = UploadOperation::Replace;
  settings.audience_id = audience;
  settings.session_id = 9001;
  settings.batch_size = 100;
  constexpr int kMembers = 950;  // 10 batches, the last one short
  settings.estimated_total = kMembers;
  ExportSender sender(engine, format, mapping.schema, settings);
  std::vector<BatchOutcome> outcomes;
  std::string member;
  int next = 0;
  auto started = Clock::now();
  while (!sender.done() && elapsed_ms(started) < 15000) {
    while (next < kMembers && sender.accepts_rows()) {
      format.encode({"person" + std::to_string(next++) + "@example.com"}, member);
      sender.add_member(member);
    }
    if (next == kMembers) sender.finish();
    for (auto& outcome : sender.poll(100)) outcomes.push_back(std::move(outcome));
  }
  ASSERT_EQ(outcomes.size(), 10u);
  for (const auto& outcome : outcomes)
    EXPECT_TRUE(outcome.succeeded) << outcome.batch_seq << ": " << outcome.error.message;
  Json sessions = replace_sessions(audience);
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].at("outcome"), "finished");
  EXPECT_EQ(sessions[0].at("batches").size(), 10u);
  EXPECT_EQ(sessions[0].at("batches").back().at("batch_seq").get<int>(), 10);
  EXPECT_TRUE(compare(audience, 0, kMembers).at("equal").get<bool>());
}

TEST_F(UploadEngineSim, SenderReportsAMalformedMemberFromItsThread) {
  std::string audience = create_audience("sender-malformed");
  UploadEngine engine(settings_, credentials_, quick_engine(4), should_abort);
  ExportMapping mapping = resolve_mapping("s", {"email"}, "", "");
  MemberFormat format(mapping);
  SenderSettings settings;
  settings.audience_id = audience;
  ExportSender sender(engine, format, mapping.schema, settings);
  sender.add_member(std::string("\x05" "abc", 4));  // says 5 bytes, holds 3
  sender.finish();
  EXPECT_THROW(sender.poll(1000), InvalidArgument);
  EXPECT_EQ(endpoint_requests("POST /{audience_id}/users"), 0);
}

TEST(UploadEngineBackoff, DelaysStayWithinTheJitterBandAndTheCap) {
  constexpr std::int64_t kBase = 2000;
  constexpr std::int64_t kCap = 15 * 60 * 1000;
  Backoff backoff(kBase, kCap, 12345);
  Backoff same(kBase, kCap, 12345);
  Backoff other(kBase, kCap, 54321);
  bool any_difference = false;
  for (int retry = 1; retry <= 20; ++retry) {
    std::int64_t span = std::min<std::int64_t>(kCap, kBase << std::min(retry - 1, 30));
    double lowest = 1.0;
    double highest = 0.0;
    for (int draw = 0; draw < 200; ++draw) {
      std::int64_t delay = backoff.delay_ms(retry);
      EXPECT_GE(delay * 2, span) << "retry " << retry;
      EXPECT_LE(delay, span) << "retry " << retry;
      EXPECT_EQ(same.delay_ms(retry), delay);  // a fixed seed repeats itself
      any_difference |= other.delay_ms(retry) != delay;
      lowest = std::min(lowest, static_cast<double>(delay) / static_cast<double>(span));
      highest = std::max(highest, static_cast<double>(delay) / static_cast<double>(span));
    }
    EXPECT_LT(lowest, 0.6);  // the band is used, not a point in it
    EXPECT_GT(highest, 0.9);
  }
  EXPECT_TRUE(any_difference);
  Backoff tiny(0, 0, 1);
  EXPECT_EQ(tiny.delay_ms(3), 0);
}

// A closed loopback port refuses at once: every attempt is a transport error
// (Retry), and the engine's clock alone decides when the next one goes.
TEST(UploadEngineBackoff, RetriesWaitForTheDrawnDelayOnAnInjectedClock) {
  int probe = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length), 0);
  close(probe);

  GraphSettings settings;
  settings.base_url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  Credentials credentials;
  credentials.access_token = "token";
  EngineSettings engine_settings;
  engine_settings.max_attempts = 3;
  engine_settings.base_delay_ms = 1000;
  engine_settings.max_delay_ms = 1500;
  engine_settings.jitter_seed = 7;
  fake_now = 1'000'000;
  UploadEngine engine(settings, credentials, engine_settings, should_abort, fake_clock);
  Backoff mirror(1000, 1500, 7);  // the same draws as the engine's

  // A replace batch 1 that never reached the server may be sent again.
  engine.submit(UploadOperation::Replace, "123", make_batch(1, 1, true, 0, 1, 1));
  EXPECT_TRUE(engine.poll(300).empty());
  EXPECT_EQ(engine.requests_sent(), 1u);

  std::int64_t first = mirror.delay_ms(1);
  EXPECT_GE(first, 500);
  EXPECT_LE(first, 1000);
  fake_now += first - 1;
  EXPECT_TRUE(engine.poll(100).empty());
  EXPECT_EQ(engine.requests_sent(), 1u);
  fake_now += 1;
  EXPECT_TRUE(engine.poll(300).empty());
  EXPECT_EQ(engine.requests_sent(), 2u);

  std::int64_t second = mirror.delay_ms(2);
  EXPECT_GE(second, 750);
  EXPECT_LE(second, 1500);
  fake_now += second - 1;
  EXPECT_TRUE(engine.poll(100).empty());
  EXPECT_EQ(engine.requests_sent(), 2u);
  fake_now += 1;
  std::vector<BatchOutcome> outcomes;
  auto started = Clock::now();
  while (outcomes.empty() && elapsed_ms(started) < 3000) outcomes = engine.poll(100);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_FALSE(outcomes[0].succeeded);
  EXPECT_EQ(outcomes[0].attempts, 3);
  EXPECT_EQ(outcomes[0].error_class, ErrorClass::Retry);
  EXPECT_EQ(outcomes[0].error.http_status, 0);
  EXPECT_FALSE(outcomes[0].outcome_unknown);  // nothing was sent
  EXPECT_TRUE(engine.idle());
}

TEST(UploadEngineHeaders, RetryAfterInSecondsOrAsAnHttpDate) {
  const std::int64_t now = 1'700'000'000;  // Tue, 14 Nov 2023 22:13:20 GMT
  EXPECT_EQ(retry_after_seconds({}, now), 0);
  EXPECT_EQ(retry_after_seconds({{"Retry-After", "120"}}, now), 120);
  EXPECT_EQ(retry_after_seconds({{"retry-after", "5"}, {"RETRY-AFTER", "7"}}, now), 7);
  EXPECT_EQ(retry_after_seconds({{"Retry-After", "Tue, 14 Nov 2023 22:14:20 GMT"}}, now), 60);
  EXPECT_EQ(retry_after_seconds({{"Retry-After", "Tue, 14 Nov 2023 22:00:00 GMT"}}, now), 0);
  EXPECT_EQ(retry_after_seconds({{"Retry-After", "soon"}}, now), 0);
  EXPECT_EQ(retry_after_seconds({{"Retry-After", "-3"}}, now), 0);
  EXPECT_EQ(retry_after_seconds({{"Retry-After", "99999999999"}}, now), 24 * 60 * 60);
  EXPECT_EQ(retry_after_seconds({{"X-Retry-After", "9"}}, now), 0);
}

TEST(UploadEngineHeaders, CredentialsAreRedactedFromApiErrors) {
  Credentials credentials;
  credentials.access_token = "EAAB-secret-token";
  credentials.app_secret = "app-secret-1";
  GraphResponse response;
  response.http_status = 400;
  response.body =
      R"({"error":{"message":"bad token EAAB-secret-token with app-secret-1","code":190,)"
      R"("error_user_msg":"EAAB-secret-token"}})";
  GraphError error = api_error(response, credentials);
  EXPECT_EQ(error.code, 190);
  EXPECT_EQ(error.message, "bad token [redacted] with [redacted]");
  EXPECT_EQ(error.user_message, "[redacted]");
}

TEST(UploadEngineSubmit, RefusesWhatItCannotSendSafely) {
  GraphSettings settings;
  settings.base_url = "http://127.0.0.1:9";
  Credentials credentials;
  credentials.access_token = "token";
  UploadEngine engine(settings, credentials, quick_engine(4), should_abort);
  EXPECT_THROW(engine.submit(UploadOperation::Add, "12/../me", make_batch(1, 1, true, 0, 1, 1)),
               InvalidArgument);
  EXPECT_THROW(engine.submit(UploadOperation::Add, "123", UploadBatch{}), InvalidArgument);
  EXPECT_THROW(engine.submit(UploadOperation::Replace, "123", make_batch(1, 0, true, 0, 1, 1)),
               InvalidArgument);
  engine.submit(UploadOperation::Replace, "123", make_batch(1, 1, false, 0, 1, 2));
  // One replace session per audience at a time (R8).
  EXPECT_THROW(engine.submit(UploadOperation::Replace, "123", make_batch(2, 1, true, 0, 1, 1)),
               std::logic_error);
  engine.submit(UploadOperation::Replace, "456", make_batch(3, 1, true, 0, 1, 1));
  EXPECT_FALSE(engine.idle());
  EXPECT_EQ(engine.blocked_until_ms(), 0);

  EngineSettings bad = quick_engine();
  bad.max_in_flight = 0;
  EXPECT_THROW(UploadEngine(settings, credentials, bad, should_abort), InvalidArgument);
  settings.base_url = "http://example.com";
  EXPECT_THROW(UploadEngine(settings, credentials, quick_engine(), should_abort), InvalidArgument);
}

}  // namespace
}  // namespace connector
