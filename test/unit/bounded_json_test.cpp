// A hostile or broken endpoint answering with deeply nested JSON: refused
// before it is parsed, never a stack overflow, in every parser of answers.

#include "graph/bounded_json.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "graph/graph_error.hpp"
#include "graph/upload_engine.hpp"

namespace connector {
namespace {

std::string nested(std::size_t depth, const std::string& inner = "1") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

TEST(BoundedJson, ParsesWhatNestsWithinTheLimit) {
  EXPECT_EQ(parse_bounded_json(nested(kMaxJsonDepth)).dump().size(), 2 * kMaxJsonDepth + 1);
  EXPECT_TRUE(parse_bounded_json(R"({"a": "[[[[{{{{", "b": [1, {"c": "\"]"}]})").is_object());
}

TEST(BoundedJson, RefusesDeeperDocumentsAndGarbage) {
  EXPECT_TRUE(parse_bounded_json(nested(kMaxJsonDepth + 1)).is_discarded());
  EXPECT_TRUE(parse_bounded_json("{\"a\": " + nested(100) + "}").is_discarded());
  EXPECT_TRUE(parse_bounded_json("not json").is_discarded());
  // Brackets inside strings, escaped quotes included, do not count.
  EXPECT_TRUE(parse_bounded_json("[\"" + std::string(1000, '[') + "\\\"\"]").is_array());
}

// 4,000,000 levels in invalid_entry_samples once overflowed a worker's stack
// and, re-queued after each crash, restarted the whole cluster in a loop.
TEST(BoundedJson, AnUploadAnswerFourMillionLevelsDeepIsRefusedNotACrash) {
  std::string body = R"({"num_received": 5, "num_invalid_entries": 1, "invalid_entry_samples": {"x": )" +
                     nested(4'000'000) + "}}";
  EXPECT_FALSE(parse_upload_answer(body).has_value());
  GraphError error = parse_graph_error(400, body);
  EXPECT_EQ(error.code, 0);
  EXPECT_NE(error.message.find("non-JSON body"), std::string::npos);
  std::vector<std::pair<std::string, std::string>> headers = {
      {"X-Business-Use-Case-Usage", nested(4'000'000)}};
  EXPECT_EQ(regain_access_delay_seconds(headers), 0);
}

TEST(BoundedJson, AnUploadAnswerKeepsItsCountsAndBoundedSamples) {
  std::string samples;
  for (int i = 0; i < 1000; ++i) samples += (i ? ",\"" : "\"") + std::to_string(i) + "\":[\"bad\"]";
  auto answer = parse_upload_answer(R"({"num_received": 10000, "num_invalid_entries": "3",)"
                                    R"( "invalid_entry_samples": {)" + samples + "}}");
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->num_received, 10000);
  EXPECT_EQ(answer->num_invalid_entries, 3);
  EXPECT_LE(answer->invalid_entry_samples.size(), 4096u);
  EXPECT_TRUE(parse_bounded_json(answer->invalid_entry_samples).is_object());
}

}  // namespace
}  // namespace connector
