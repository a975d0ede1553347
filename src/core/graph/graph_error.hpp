// What a failed Graph call means and when to call again: Meta's error bodies,
// the usage headers (docs/graph-api.md section 4.3) and the retry classification of
// section 5.2. Destination checks and the export engine both decide through
// this one table, so a code never means "retry" in one place and "give up" in
// another.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "errors.hpp"

namespace connector {

enum class ErrorClass {
  Retry,      // the same request again after backoff
  ReAuth,     // the credential is dead: stop using it, a new token is needed
  Permanent,  // do not retry; fix the request, the configuration or the audience
  Operator,   // an administrator must act in Meta Business settings (terms, links, version)
  Session,    // this replace session cannot go on; the rows go by another way
};

struct GraphError {
  long http_status = 0;  // 0 when no HTTP response arrived
  int code = 0;          // 0 when the body was not a Graph error JSON
  int subcode = 0;
  std::string type, message, user_title, user_message, fbtrace_id;
  bool is_transient = false;
};

// Parses a response body. A body that is not {"error": {...}} JSON yields code 0
// and a message describing the response (e.g. "HTTP 502 with a non-JSON body").
// Text fields are capped at about 300 bytes (cut on a UTF-8 boundary) with
// control characters replaced by spaces, ready for a log line.
GraphError parse_graph_error(long http_status, std::string_view body) noexcept;

// The subcode decides before the code; 1487301 and 1487366 count as either.
// No Graph error (code 0: network failure, HTTP 5xx, HTML or truncated body)
// is Retry; an unknown code is Permanent, unless the status is 5xx or Meta
// marked it transient.
ErrorClass classify(const GraphError& error) noexcept;

const char* error_class_name(ErrorClass error_class) noexcept;  // "retry", "reauth", ...

// Seconds to wait before calling this ad account again, from a response's usage
// headers: the largest estimated_time_to_regain_access (minutes) in
// X-Business-Use-Case-Usage (or X-Business-Use-Case) times 60, or
// reset_time_duration from X-Ad-Account-Usage once acc_id_util_pct reaches 100,
// whichever is longer. 0 when not blocked or when the headers are absent or
// malformed. Header names are matched case-insensitively.
std::int64_t regain_access_delay_seconds(
    const std::vector<std::pair<std::string, std::string>>& headers) noexcept;

// The object named does not exist (or this token may not see it).
bool is_missing_object(const GraphError& error) noexcept;

// What a failed Graph API call is for the user, and so its SQLSTATE: the one
// table for destination functions and export batches alike. An error with
// no HTTP answer at all (http_status 0) is Unreachable.
ExternalError::Kind failure_kind(const GraphError& error) noexcept;

}  // namespace connector
