// libFuzzer target over every parser of what the Graph API answers: member
// upload answers, error bodies and throttling headers. Beyond "no crash, no
// sanitizer report" (a deep document must not overflow the stack), it checks
// that what an upload answer keeps of its samples is a JSON object of bounded
// size, as the run history stores it.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "graph/bounded_json.hpp"
#include "graph/graph_error.hpp"
#include "graph/upload_engine.hpp"

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto answer = connector::parse_upload_answer(text)) {
    require(answer->invalid_entry_samples.size() <= 4096);
    auto samples = connector::parse_bounded_json(answer->invalid_entry_samples);
    require(samples.is_object());
  }
  connector::GraphError error = connector::parse_graph_error(400, text);
  (void)connector::classify(error);
  std::vector<std::pair<std::string, std::string>> headers = {
      {"X-Business-Use-Case-Usage", std::string(text)}, {"X-Ad-Account-Usage", std::string(text)}};
  require(connector::regain_access_delay_seconds(headers) >= 0);
  return 0;
}
