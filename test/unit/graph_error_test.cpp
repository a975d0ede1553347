// Every row of docs/graph-api.md section 5.2 goes through the parser and the
// classifier as a real body would; then the bodies that are not what Meta
// documents, and the usage headers of section 4.3.

#include "graph/graph_error.hpp"

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace connector {
namespace {

std::string graph_error_body(int code, int subcode) {
  std::string body =
      R"({"error":{"message":"m","type":"OAuthException","code":)" + std::to_string(code);
  if (subcode != 0) body += R"(,"error_subcode":)" + std::to_string(subcode);
  return body + R"(,"fbtrace_id":"AbC123"}})";
}

struct Row {
  std::string name;
  long http_status;
  std::string body;
  ErrorClass expected;
};

Row graph(int code, int subcode, ErrorClass expected, long http_status = 400) {
  std::string name = "code_" + std::to_string(code);
  if (subcode != 0) name += "_subcode_" + std::to_string(subcode);
  if (http_status != 400) name += "_http_" + std::to_string(http_status);
  return {name, http_status, graph_error_body(code, subcode), expected};
}

std::vector<Row> section_5_2_rows() {
  const ErrorClass R = ErrorClass::Retry;
  const ErrorClass A = ErrorClass::ReAuth;
  const ErrorClass P = ErrorClass::Permanent;
  const ErrorClass O = ErrorClass::Operator;
  const ErrorClass S = ErrorClass::Session;
  std::vector<Row> rows = {
      graph(1, 0, R, 500),
      graph(1, 99, R),
      graph(2, 0, R, 503),
      graph(4, 0, R),
      graph(17, 0, R),
      graph(17, 2446079, R),
      graph(32, 0, R),
      graph(100, 0, P),
      graph(100, 1713230, P),
      graph(100, 1713231, P),
      graph(100, 1713228, P),
      graph(105, 0, P),
      graph(190, 0, A),
      graph(190, 463, A),
      graph(190, 460, A),
      graph(190, 467, A),
      graph(190, 492, A),
      graph(190, 458, A),
      graph(190, 459, A),
      graph(190, 464, A),
      graph(190, 0, A, 401),
      graph(200, 0, P, 403),
      graph(200, 1870090, O),
      graph(200, 1870050, O),
      graph(294, 0, A),
      graph(341, 0, R),
      graph(368, 0, R),
      graph(613, 0, R),
      graph(613, 1487742, R),
      graph(2635, 0, O),
      graph(2650, 0, P),
      graph(2650, 1870145, R),
      graph(2650, 1870148, R),
      graph(2650, 1870158, S),
      graph(2650, 1870147, S),
      graph(2650, 1870159, S),
      graph(2650, 1870144, P),
      graph(1487301, 0, P),
      graph(1487366, 0, P),
      graph(100, 1487301, P),
      graph(100, 1487366, P),
      // "Also seen" below the table.
      graph(803, 0, R),
      graph(194, 0, P),
      graph(2655, 0, O),
      graph(2663, 0, O),
      graph(3, 0, P),
      graph(10, 0, P),
      graph(201, 0, P),
      graph(250, 0, P),
      graph(299, 0, P),
      // Unknown codes: permanent, unless the server failed.
      graph(12345, 0, P),
      graph(999999, 7, P),
      graph(12345, 0, R, 500),
      graph(300, 0, P),
      graph(79999, 0, P),
      graph(80015, 0, P),
      // Not Graph errors at all.
      {"http_500_empty", 500, "", R},
      {"http_502_html", 502, "<html><body><h1>502 Bad Gateway</h1></body></html>", R},
      {"http_504_truncated_json", 504, R"({"error":{"message":"Ti)", R},
      {"network_failure", 0, "", R},
  };
  for (int code = 80000; code <= 80014; ++code) rows.push_back(graph(code, 0, R, 429));
  rows.push_back(graph(80003, 2446079, R));
  return rows;
}

class GraphErrorClassification : public ::testing::TestWithParam<Row> {};

TEST_P(GraphErrorClassification, FollowsSection5_2) {
  const Row& row = GetParam();
  GraphError error = parse_graph_error(row.http_status, row.body);
  EXPECT_EQ(error_class_name(classify(error)), std::string(error_class_name(row.expected)))
      << row.body;
}

INSTANTIATE_TEST_SUITE_P(Table, GraphErrorClassification, ::testing::ValuesIn(section_5_2_rows()),
                         [](const ::testing::TestParamInfo<Row>& row_info) {
                           return row_info.param.name;
                         });

GraphError with_codes(int code, int subcode, long http_status = 400) {
  GraphError error;
  error.http_status = http_status;
  error.code = code;
  error.subcode = subcode;
  return error;
}

TEST(GraphErrorClassify, SubcodeDecidesBeforeCode) {
  EXPECT_EQ(classify(with_codes(200, 0)), ErrorClass::Permanent);
  EXPECT_EQ(classify(with_codes(200, 1870090)), ErrorClass::Operator);
  EXPECT_EQ(classify(with_codes(2650, 0)), ErrorClass::Permanent);
  EXPECT_EQ(classify(with_codes(2650, 1870145)), ErrorClass::Retry);
  EXPECT_EQ(classify(with_codes(2650, 1870158)), ErrorClass::Session);
  // A known subcode wins even under a code that would say otherwise.
  EXPECT_EQ(classify(with_codes(1, 1487366)), ErrorClass::Permanent);
  EXPECT_EQ(classify(with_codes(100, 1870147)), ErrorClass::Session);
  // An unknown subcode leaves the decision to the code.
  EXPECT_EQ(classify(with_codes(190, 12345)), ErrorClass::ReAuth);
  EXPECT_EQ(classify(with_codes(2650, 12345)), ErrorClass::Permanent);
  EXPECT_EQ(classify(with_codes(17, 12345)), ErrorClass::Retry);
}

TEST(GraphErrorClassify, TransientFlagMakesOnlyPermanentErrorsRetryable) {
  GraphError error = with_codes(2650, 0);
  error.is_transient = true;
  EXPECT_EQ(classify(error), ErrorClass::Retry);
  error = with_codes(12345, 0);
  error.is_transient = true;
  EXPECT_EQ(classify(error), ErrorClass::Retry);
  for (auto [code, subcode, expected] :
       {std::tuple{190, 0, ErrorClass::ReAuth}, std::tuple{200, 1870090, ErrorClass::Operator},
        std::tuple{2650, 1870159, ErrorClass::Session}}) {
    error = with_codes(code, subcode);
    error.is_transient = true;
    EXPECT_EQ(classify(error), expected) << code << "/" << subcode;
  }
}

TEST(GraphErrorClassify, ClassNames) {
  EXPECT_STREQ(error_class_name(ErrorClass::Retry), "retry");
  EXPECT_STREQ(error_class_name(ErrorClass::ReAuth), "reauth");
  EXPECT_STREQ(error_class_name(ErrorClass::Permanent), "permanent");
  EXPECT_STREQ(error_class_name(ErrorClass::Operator), "operator");
  EXPECT_STREQ(error_class_name(ErrorClass::Session), "session");
}

const char kDocumentedBody[] =
    R"({"error": {"message": "Error validating access token: Session has expired", )"
    R"("type": "OAuthException", "code": 190, "error_subcode": 463, )"
    R"("error_user_title": "Token expired", "error_user_msg": "Log in again.", )"
    R"("fbtrace_id": "A3b8C6PpI-kdIOwPwV4PANi"}})";

TEST(GraphErrorParse, ReadsEveryDocumentedField) {
  GraphError error = parse_graph_error(400, kDocumentedBody);
  EXPECT_EQ(error.http_status, 400);
  EXPECT_EQ(error.code, 190);
  EXPECT_EQ(error.subcode, 463);
  EXPECT_EQ(error.type, "OAuthException");
  EXPECT_EQ(error.message, "Error validating access token: Session has expired");
  EXPECT_EQ(error.user_title, "Token expired");
  EXPECT_EQ(error.user_message, "Log in again.");
  EXPECT_EQ(error.fbtrace_id, "A3b8C6PpI-kdIOwPwV4PANi");
  EXPECT_FALSE(error.is_transient);
  EXPECT_EQ(classify(error), ErrorClass::ReAuth);
}

TEST(GraphErrorParse, ErrorDataAsObjectOrStringIsTolerated) {
  for (const char* error_data : {R"({"blame_field_specs":[["payload","data"]]})",
                                 R"("{\"blame_field_specs\":[[\"payload\"]]}")", "null", "[]"}) {
    std::string body = R"({"error":{"message":"Invalid parameter","type":"OAuthException",)"
                       R"("code":100,"error_subcode":1713231,"is_transient":false,"error_data":)" +
                       std::string(error_data) + R"(,"fbtrace_id":"X1"}})";
    GraphError error = parse_graph_error(400, body);
    EXPECT_EQ(error.code, 100) << error_data;
    EXPECT_EQ(error.subcode, 1713231) << error_data;
    EXPECT_EQ(error.message, "Invalid parameter");
    EXPECT_EQ(error.fbtrace_id, "X1");
    EXPECT_EQ(classify(error), ErrorClass::Permanent);
  }
}

TEST(GraphErrorParse, IsTransientMustBeTrueBoolean) {
  EXPECT_TRUE(parse_graph_error(500, R"({"error":{"code":2,"is_transient":true}})").is_transient);
  EXPECT_FALSE(
      parse_graph_error(500, R"({"error":{"code":2,"is_transient":"true"}})").is_transient);
  EXPECT_FALSE(parse_graph_error(500, R"({"error":{"code":2,"is_transient":1}})").is_transient);
}

TEST(GraphErrorParse, HtmlBodyIsAServerFailureAndItsTextIsNotCopied) {
  std::string html =
      "<!DOCTYPE html><html><head><title>Error</title></head><body>access_token=EAAsecret "
      "upstream timed out</body></html>";
  GraphError error = parse_graph_error(502, html);
  EXPECT_EQ(error.code, 0);
  EXPECT_EQ(error.message, "HTTP 502 with a non-JSON body");
  EXPECT_TRUE(error.type.empty() && error.fbtrace_id.empty());
  EXPECT_EQ(classify(error), ErrorClass::Retry);
}

TEST(GraphErrorParse, EveryTruncationOfAnErrorBodyIsAServerFailure) {
  std::string body = kDocumentedBody;
  for (std::size_t length = 0; length < body.size(); ++length) {
    GraphError error = parse_graph_error(400, std::string_view(body).substr(0, length));
    EXPECT_EQ(error.code, 0) << length;
    EXPECT_EQ(classify(error), ErrorClass::Retry) << length;
    EXPECT_EQ(error.message.find("Session"), std::string::npos) << length;
  }
  EXPECT_EQ(parse_graph_error(200, "").message, "HTTP 200 with an empty body");
}

TEST(GraphErrorParse, JsonThatIsNotAGraphError) {
  for (const char* body : {"{}", "[]", "null", "42", R"("error")", R"({"error":"oops"})",
                           R"({"error":null})", R"({"data":[]})", R"([{"error":{"code":190}}])"}) {
    GraphError error = parse_graph_error(400, body);
    EXPECT_EQ(error.code, 0) << body;
    EXPECT_EQ(error.message, "HTTP 400 with a JSON body that is not a Graph error") << body;
  }
  EXPECT_EQ(parse_graph_error(0, "").message, "no HTTP response with an empty body");
}

TEST(GraphErrorParse, FieldsOfTheWrongTypeAreIgnored) {
  GraphError error = parse_graph_error(
      400, R"({"error":{"code":"190","error_subcode":463.5,"message":{"a":1},"type":7,)"
           R"("fbtrace_id":["x"]}})");
  EXPECT_EQ(error.code, 190);  // a numeric string is still the code
  EXPECT_EQ(error.subcode, 0);
  EXPECT_EQ(error.type, "");
  EXPECT_EQ(error.fbtrace_id, "");
  EXPECT_EQ(error.message, "HTTP 400 with Graph error 190");
  EXPECT_EQ(classify(error), ErrorClass::ReAuth);

  for (const char* code : {"1e3", "100000000000", "-100000000000", "18446744073709551615",
                           R"("19x")", "true", "[]", "{}"})
    EXPECT_EQ(parse_graph_error(400, std::string(R"({"error":{"code":)") + code + "}}").code, 0)
        << code;
  EXPECT_EQ(parse_graph_error(400, R"({"error":{"code":-5}})").code, -5);
}

TEST(GraphErrorParse, LongTextIsCutOnACharacterBoundaryAndControlsBecomeSpaces) {
  std::string long_message;
  for (int i = 0; i < 400; ++i) long_message += "\xC3\xA9";  // é, two bytes
  GraphError error = parse_graph_error(
      400, R"({"error":{"code":100,"message":")" + long_message +
               R"(","error_user_msg":"line one\nline two\ttab\u0000nul","fbtrace_id":")" +
               std::string(1000, 'F') + R"("}})");
  EXPECT_LE(error.message.size(), 300u);
  EXPECT_GE(error.message.size(), 290u);
  ASSERT_GE(error.message.size(), 3u);
  EXPECT_EQ(error.message.substr(error.message.size() - 3), "...");
  std::string kept = error.message.substr(0, error.message.size() - 3);
  EXPECT_EQ(kept.size() % 2, 0u) << "cut inside a two-byte character";
  EXPECT_EQ(kept, long_message.substr(0, kept.size()));
  EXPECT_EQ(error.user_message, std::string("line one line two tab nul", 25));
  EXPECT_LE(error.fbtrace_id.size(), 300u);
}

TEST(GraphErrorParse, InvalidUtf8AndDeepNestingNeitherThrowNorCrash) {
  EXPECT_EQ(parse_graph_error(400, "{\"error\":{\"code\":1,\"message\":\"\xff\xfe\"}}").code, 0);
  EXPECT_EQ(parse_graph_error(400, std::string(200000, '[')).code, 0);
  // Deeper than any answer Meta sends: refused unread (bounded_json.hpp), so retried as a
  // body that is not a Graph error.
  std::string deep = R"({"error":{"code":2,"error_data":)" + std::string(10000, '[') +
                     std::string(10000, ']') + "}}";
  EXPECT_EQ(parse_graph_error(500, deep).code, 0);
  EXPECT_EQ(classify(parse_graph_error(500, deep)), ErrorClass::Retry);
}

// One table for destination functions and export batches: the kind decides the SQLSTATE.
TEST(GraphErrorFailureKind, OneKindPerErrorWhereverItHappens) {
  using Kind = ExternalError::Kind;
  EXPECT_EQ(failure_kind(parse_graph_error(403, graph_error_body(200, 0))), Kind::PermissionMissing);
  // A token without ads_management needs a new token: re-authentication, as 190.
  EXPECT_EQ(failure_kind(parse_graph_error(400, graph_error_body(294, 0))), Kind::AuthenticationFailed);
  EXPECT_EQ(failure_kind(parse_graph_error(401, graph_error_body(190, 463))), Kind::AuthenticationFailed);
  EXPECT_EQ(failure_kind(parse_graph_error(400, graph_error_body(100, 33))), Kind::NotFound);
  EXPECT_EQ(failure_kind(parse_graph_error(400, graph_error_body(2655, 0))), Kind::NotReady);
  EXPECT_EQ(failure_kind(parse_graph_error(503, "<html>busy</html>")), Kind::Temporary);
  GraphError no_answer;  // http_status 0: the request got no HTTP answer
  EXPECT_EQ(failure_kind(no_answer), Kind::Unreachable);
  EXPECT_EQ(failure_kind(parse_graph_error(400, graph_error_body(100, 0))), Kind::Rejected);
}

using Headers = std::vector<std::pair<std::string, std::string>>;

TEST(RegainAccessDelay, AbsentOrUnblockedIsZero) {
  EXPECT_EQ(regain_access_delay_seconds({}), 0);
  EXPECT_EQ(regain_access_delay_seconds(
                {{"Content-Type", "application/json"}, {"X-App-Usage", R"({"call_count":100})"}}),
            0);
  EXPECT_EQ(regain_access_delay_seconds(
                {{"X-Business-Use-Case-Usage",
                  R"({"123":[{"type":"custom_audience","call_count":42,"total_cputime":9,)"
                  R"("total_time":11,"estimated_time_to_regain_access":0,)"
                  R"("ads_api_access_tier":"standard_access"}]})"},
                 {"X-Ad-Account-Usage", R"({"acc_id_util_pct":9.67,"reset_time_duration":100,)"
                                        R"("ads_api_access_tier":"standard_access"}})"}}),
            0);
}

TEST(RegainAccessDelay, BusinessUseCaseMinutesBecomeSecondsTakingTheLongest) {
  EXPECT_EQ(regain_access_delay_seconds(
                {{"X-Business-Use-Case-Usage",
                  R"({"123":[{"type":"custom_audience","estimated_time_to_regain_access":5}]})"}}),
            300);
  EXPECT_EQ(regain_access_delay_seconds(
                {{"X-Business-Use-Case-Usage",
                  R"({"123":[{"type":"custom_audience","estimated_time_to_regain_access":2},)"
                  R"({"type":"ads_management","estimated_time_to_regain_access":7}],)"
                  R"("456":[{"type":"custom_audience","estimated_time_to_regain_access":3}]})"}}),
            420);
  EXPECT_EQ(regain_access_delay_seconds({{"X-Business-Use-Case-Usage",
                                          R"({"1":[{"estimated_time_to_regain_access":0.5}]})"}}),
            30);
}

TEST(RegainAccessDelay, HeaderNamesAreCaseInsensitiveAndBothBusinessNamesCount) {
  const std::string usage = R"({"1":[{"estimated_time_to_regain_access":4}]})";
  for (const char* name :
       {"X-Business-Use-Case-Usage", "x-business-use-case-usage", "X-BUSINESS-USE-CASE-USAGE",
        "X-Business-Use-Case", "x-business-use-case"})
    EXPECT_EQ(regain_access_delay_seconds({{name, usage}}), 240) << name;
  for (const char* name : {"X-Business-Use-Case-Usage-Extra", "Business-Use-Case-Usage",
                           "X-Business-Use-Case-Usage ", "X-App-Usage"})
    EXPECT_EQ(regain_access_delay_seconds({{name, usage}}), 0) << name;
}

TEST(RegainAccessDelay, AdAccountScoreBlocksOnlyAtOneHundredPercent) {
  auto ad_account = [](const std::string& value) {
    return regain_access_delay_seconds({{"x-ad-account-usage", value}});
  };
  EXPECT_EQ(ad_account(R"({"acc_id_util_pct":99.9,"reset_time_duration":100})"), 0);
  EXPECT_EQ(ad_account(R"({"acc_id_util_pct":100,"reset_time_duration":100})"), 100);
  EXPECT_EQ(ad_account(R"({"acc_id_util_pct":150.5,"reset_time_duration":300})"), 300);
  EXPECT_EQ(ad_account(R"({"acc_id_util_pct":100})"), 0);
  EXPECT_EQ(ad_account(R"({"acc_id_util_pct":"100","reset_time_duration":300})"), 0);
}

TEST(RegainAccessDelay, SeveralHeadersTakeTheLongestWait) {
  Headers headers = {
      {"x-ad-account-usage", R"({"acc_id_util_pct":100,"reset_time_duration":60})"},
      {"X-Business-Use-Case-Usage", R"({"1":[{"estimated_time_to_regain_access":2}]})"},
      {"X-Business-Use-Case", R"({"1":[{"estimated_time_to_regain_access":1}]})"},
  };
  EXPECT_EQ(regain_access_delay_seconds(headers), 120);
  headers[0].second = R"({"acc_id_util_pct":100,"reset_time_duration":900})";
  EXPECT_EQ(regain_access_delay_seconds(headers), 900);
}

TEST(RegainAccessDelay, MalformedValuesCountAsZeroWithoutSpoilingOthers) {
  const std::string ad_account = R"({"acc_id_util_pct":100,"reset_time_duration":60})";
  for (const char* bad :
       {"", "not json", R"({"1":[{"estimated_time_to_regain_access":5})", "[]", "5",
        R"({"1":[{"estimated_time_to_regain_access":"5"}]})",
        R"({"1":[{"estimated_time_to_regain_access":-5}]})", R"({"1":[5, null, "x"]})",
        R"({"1":{"estimated_time_to_regain_access":null}})"}) {
    EXPECT_EQ(regain_access_delay_seconds({{"X-Business-Use-Case-Usage", bad}}), 0) << bad;
    EXPECT_EQ(regain_access_delay_seconds(
                  {{"X-Business-Use-Case-Usage", bad}, {"X-Ad-Account-Usage", ad_account}}),
              60)
        << bad;
  }
}

TEST(RegainAccessDelay, AbsurdValuesAreCappedAtOneDay) {
  EXPECT_EQ(regain_access_delay_seconds({{"X-Business-Use-Case-Usage",
                                          R"({"1":[{"estimated_time_to_regain_access":1e300}]})"}}),
            86400);
  EXPECT_EQ(regain_access_delay_seconds(
                {{"X-Ad-Account-Usage",
                  R"({"acc_id_util_pct":100,"reset_time_duration":18446744073709551615})"}}),
            86400);
}

}  // namespace
}  // namespace connector
