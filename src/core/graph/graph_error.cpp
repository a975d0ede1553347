// Parsing never throws and never trusts the shape of what arrived: a proxy's
// HTML page, a truncated body or a field of the wrong type all end as an error
// the caller can classify and log. Only the body is read, and nothing of it but
// the documented error fields, so a log line built from a GraphError carries no
// request data and no header value.

#include "graph/graph_error.hpp"

#include <charconv>
#include <climits>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "graph/bounded_json.hpp"

namespace connector {
namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaximumTextBytes = 300;
// A sanity ceiling: a garbled or hostile header must not stop an ad account for
// good. Meta's real blocks are minutes to hours; past a day we simply ask again.
constexpr std::int64_t kMaximumDelaySeconds = 24 * 60 * 60;

std::string status_text(long http_status) {
  if (http_status <= 0) return "no HTTP response";
  return "HTTP " + std::to_string(http_status);
}

// Log-ready: control characters become spaces and long text is cut on a
// character boundary. The parser has already rejected invalid UTF-8.
std::string clean_text(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F) c = ' ';
  }
  if (out.size() > kMaximumTextBytes) {
    std::size_t cut = kMaximumTextBytes - 3;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
    out += "...";
  }
  return out;
}

std::string string_field(const Json& object, const char* name) {
  auto found = object.find(name);
  if (found == object.end() || !found->is_string()) return {};
  return clean_text(found->get_ref<const std::string&>());
}

// Meta sends integers; a numeric string is accepted too, anything else is 0.
int integer_field(const Json& object, const char* name) {
  auto found = object.find(name);
  if (found == object.end()) return 0;
  if (found->is_number_unsigned()) {
    auto value = found->get<std::uint64_t>();
    return value <= static_cast<std::uint64_t>(INT_MAX) ? static_cast<int>(value) : 0;
  }
  if (found->is_number_integer()) {
    auto value = found->get<std::int64_t>();
    return value >= INT_MIN && value <= INT_MAX ? static_cast<int>(value) : 0;
  }
  if (found->is_string()) {
    const std::string& text = found->get_ref<const std::string&>();
    int value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    return error == std::errc() && end == text.data() + text.size() ? value : 0;
  }
  return 0;
}

std::optional<ErrorClass> class_of_subcode(int subcode) noexcept {
  switch (subcode) {
    case 1870145:  // 2650: another update or replace is running
    case 1870148:  // 2650: something went wrong
    case 2446079:  // 17: ad-account score limit
    case 1487742:  // 613: too many calls from the ad account
      return ErrorClass::Retry;
    case 1870158:  // 2650: replace session timed out
    case 1870147:  // 2650: no batch_seq 1 seen for this session
    case 1870159:  // 2650: replace session already finished
      return ErrorClass::Session;
    case 1870090:  // 200: Custom Audience terms not accepted
    case 1870050:  // 200: ad account not linked to the Business
      return ErrorClass::Operator;
    case 1870144:  // 2650: audience too large for replace
    case 1713230:  // 100: uploads to this audience blocked
    case 1713231:  // 100: restricted field update
    case 1713228:  // 100: audience cannot be edited
    case 1487301:  // audience not shared with this ad account
    case 1487366:  // audience deleted
      return ErrorClass::Permanent;
    default:
      return std::nullopt;
  }
}

std::optional<ErrorClass> class_of_code(int code) noexcept {
  switch (code) {
    case 1:    // unknown, possibly temporary
    case 2:    // temporary service problem
    case 4:    // application rate limit
    case 17:   // user or ad-account score limit
    case 32:   // Page rate limit
    case 341:  // application limit reached
    case 368:  // temporarily blocked for policy reasons
    case 613:  // rate limit exceeded
    case 803:  // "aliases do not exist" right after creation
      return ErrorClass::Retry;
    case 190:  // token invalid, expired or revoked, whatever the subcode
    case 294:  // missing ads_management
      return ErrorClass::ReAuth;
    case 2635:  // deprecated API version: raise the configured version
    case 2655:  // older Terms of Service codes
    case 2663:
      return ErrorClass::Operator;
    case 3:
    case 10:
    case 100:
    case 105:
    case 194:
    case 2650:
    case 1487301:
    case 1487366:
      return ErrorClass::Permanent;
    default:
      break;
  }
  if (code >= 80000 && code <= 80014) return ErrorClass::Retry;  // Business Use Case limits
  if (code >= 200 && code <= 299) return ErrorClass::Permanent;  // capability and permission
  return std::nullopt;
}

bool equals_ignoring_case(std::string_view left, std::string_view right) noexcept {
  if (left.size() != right.size()) return false;
  for (std::size_t i = 0; i < left.size(); ++i) {
    char a = left[i];
    char b = right[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

// A JSON number times `scale`, rounded up to whole seconds and clamped.
std::int64_t seconds_of(const Json& value, double scale) noexcept {
  if (!value.is_number()) return 0;
  double seconds = value.get<double>() * scale;
  if (!(seconds > 0)) return 0;
  if (seconds >= static_cast<double>(kMaximumDelaySeconds)) return kMaximumDelaySeconds;
  return static_cast<std::int64_t>(std::ceil(seconds));
}

std::int64_t business_use_case_delay(const Json& usage) noexcept {
  if (!usage.is_object()) return 0;
  std::int64_t longest = 0;
  auto consider = [&longest](const Json& entry) {
    if (!entry.is_object()) return;
    auto found = entry.find("estimated_time_to_regain_access");
    if (found != entry.end()) longest = std::max(longest, seconds_of(*found, 60.0));
  };
  for (const Json& entries : usage) {
    if (entries.is_array())
      for (const Json& entry : entries) consider(entry);
    else
      consider(entries);
  }
  return longest;
}

std::int64_t ad_account_delay(const Json& usage) noexcept {
  if (!usage.is_object()) return 0;
  auto percent = usage.find("acc_id_util_pct");
  auto reset = usage.find("reset_time_duration");
  if (percent == usage.end() || !percent->is_number() || reset == usage.end()) return 0;
  if (percent->get<double>() < 100.0) return 0;
  return seconds_of(*reset, 1.0);
}

}  // namespace

GraphError parse_graph_error(long http_status, std::string_view body) noexcept {
  GraphError error;
  error.http_status = http_status;
  try {
    Json document = parse_bounded_json(body);
    if (document.is_discarded()) {
      error.message = status_text(http_status) +
                      (body.empty() ? " with an empty body" : " with a non-JSON body");
      return error;
    }
    const Json* details = nullptr;
    if (document.is_object()) {
      auto found = document.find("error");
      if (found != document.end() && found->is_object()) details = &*found;
    }
    if (details == nullptr) {
      error.message = status_text(http_status) + " with a JSON body that is not a Graph error";
      return error;
    }
    error.code = integer_field(*details, "code");
    error.subcode = integer_field(*details, "error_subcode");
    error.type = string_field(*details, "type");
    error.message = string_field(*details, "message");
    error.user_title = string_field(*details, "error_user_title");
    error.user_message = string_field(*details, "error_user_msg");
    error.fbtrace_id = string_field(*details, "fbtrace_id");
    auto transient = details->find("is_transient");
    error.is_transient =
        transient != details->end() && transient->is_boolean() && transient->get<bool>();
    if (error.message.empty() && error.code != 0)
      error.message = status_text(http_status) + " with Graph error " + std::to_string(error.code);
  } catch (...) {
    // Only allocation can fail here; keep what was parsed.
  }
  return error;
}

ErrorClass classify(const GraphError& error) noexcept {
  if (error.code == 0) return ErrorClass::Retry;  // network, 5xx, HTML or truncated body
  if (auto by_subcode = class_of_subcode(error.subcode)) {
    if (*by_subcode == ErrorClass::Permanent && error.is_transient) return ErrorClass::Retry;
    return *by_subcode;
  }
  std::optional<ErrorClass> by_code = class_of_code(error.code);
  if (!by_code)
    return error.http_status >= 500 || error.is_transient ? ErrorClass::Retry
                                                          : ErrorClass::Permanent;
  if (*by_code == ErrorClass::Permanent && error.is_transient) return ErrorClass::Retry;
  return *by_code;
}

bool is_missing_object(const GraphError& error) noexcept {
  return (error.code == 100 && error.subcode == 33) || error.code == 1487366 ||
         error.subcode == 1487366 || error.code == 803;
}

ExternalError::Kind failure_kind(const GraphError& error) noexcept {
  using Kind = ExternalError::Kind;
  switch (classify(error)) {
    case ErrorClass::ReAuth:
      return Kind::AuthenticationFailed;
    case ErrorClass::Operator:
    case ErrorClass::Session:
      return Kind::NotReady;
    case ErrorClass::Retry:
      return error.http_status == 0 ? Kind::Unreachable : Kind::Temporary;
    case ErrorClass::Permanent:
      break;
  }
  if (is_missing_object(error)) return Kind::NotFound;
  if (error.code == 200 || error.code == 10 || error.code == 3 || error.code == 294 ||
      (error.code > 200 && error.code < 300))
    return Kind::PermissionMissing;
  return Kind::Rejected;
}

const char* error_class_name(ErrorClass error_class) noexcept {
  switch (error_class) {
    case ErrorClass::Retry:
      return "retry";
    case ErrorClass::ReAuth:
      return "reauth";
    case ErrorClass::Permanent:
      return "permanent";
    case ErrorClass::Operator:
      return "operator";
    case ErrorClass::Session:
      return "session";
  }
  return "unknown";
}

std::int64_t regain_access_delay_seconds(
    const std::vector<std::pair<std::string, std::string>>& headers) noexcept {
  std::int64_t longest = 0;
  try {
    for (const auto& [name, value] : headers) {
      bool business = equals_ignoring_case(name, "X-Business-Use-Case-Usage") ||
                      equals_ignoring_case(name, "X-Business-Use-Case");
      bool ad_account = equals_ignoring_case(name, "X-Ad-Account-Usage");
      if (!business && !ad_account) continue;
      Json usage = parse_bounded_json(value);
      if (usage.is_discarded()) continue;
      longest =
          std::max(longest, business ? business_use_case_delay(usage) : ad_account_delay(usage));
    }
  } catch (...) {
    // Only allocation can fail here; what was read so far still counts.
  }
  return longest;
}

}  // namespace connector
