// Destination checks and audience management over the Graph API.

#include "graph/graph_account.hpp"

#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "graph/bounded_json.hpp"

namespace connector {
namespace {

using Json = nlohmann::json;
using Kind = ExternalError::Kind;

constexpr int kMaxPages = 1000;  // 100 audiences a page: far beyond the 500 an account may hold
constexpr const char* kAudienceFields =
    "id,name,subtype,description,approximate_count_lower_bound,approximate_count_upper_bound,"
    "operation_status,delivery_status";

std::string account_path(const std::string& ad_account_id) { return "/act_" + ad_account_id; }

Json parse_body(const GraphResponse& response, const std::string& destination,
                const std::string& doing) {
  Json body = parse_bounded_json(response.body);
  if (body.is_discarded() || !body.is_object())
    throw ExternalError(Kind::Temporary,
                        "the Graph API sent an unreadable response while " + doing +
                            " for destination \"" + destination + "\"",
                        "Try again later; if it persists, check connector.graph_api_url.");
  return body;
}

std::string text_field(const Json& object, const char* name) {
  auto found = object.find(name);
  if (found == object.end()) return {};
  if (found->is_string()) return found->get<std::string>();
  if (found->is_number_integer()) return std::to_string(found->get<std::int64_t>());
  return {};
}

std::int64_t integer_field(const Json& object, const char* name, std::int64_t fallback) {
  auto found = object.find(name);
  if (found == object.end()) return fallback;
  if (found->is_number_integer()) return found->get<std::int64_t>();
  if (found->is_string()) {
    const std::string& text = found->get_ref<const std::string&>();
    char* end = nullptr;
    long long value = std::strtoll(text.c_str(), &end, 10);
    if (end != text.c_str() && *end == '\0') return value;
  }
  return fallback;
}

// operation_status and delivery_status are {"code": N, "description": "..."}.
void read_status(const Json& object, const char* name, int& code, std::string& description) {
  auto found = object.find(name);
  if (found == object.end() || !found->is_object()) return;
  code = static_cast<int>(integer_field(*found, "code", 0));
  description = text_field(*found, "description");
}

AudienceInfo audience_of(const Json& entry) {
  AudienceInfo audience;
  audience.id = text_field(entry, "id");
  audience.name = text_field(entry, "name");
  audience.subtype = text_field(entry, "subtype");
  audience.description = text_field(entry, "description");
  audience.approximate_count_lower_bound = integer_field(entry, "approximate_count_lower_bound", -1);
  audience.approximate_count_upper_bound = integer_field(entry, "approximate_count_upper_bound", -1);
  read_status(entry, "operation_status", audience.operation_status_code, audience.operation_status);
  read_status(entry, "delivery_status", audience.delivery_status_code, audience.delivery_status);
  return audience;
}

std::string account_status_name(std::int64_t status) {
  switch (status) {
    case 2:
      return "disabled";
    case 3:
      return "unsettled";
    case 7:
      return "pending risk review";
    case 8:
      return "pending settlement";
    case 9:
      return "in grace period";
    case 100:
      return "pending closure";
    case 101:
      return "closed";
    default:
      return "status " + std::to_string(status);
  }
}

std::string tos_url(const std::string& ad_account_id) {
  return "https://business.facebook.com/ads/manage/customaudiences/tos/?act=" + ad_account_id;
}

std::string trace_detail(const GraphError& error) {
  std::string detail = "Graph API error " + std::to_string(error.code);
  if (error.subcode != 0) detail += "/" + std::to_string(error.subcode);
  if (!error.fbtrace_id.empty()) detail += ", fbtrace_id " + error.fbtrace_id;
  return detail + ".";
}


}  // namespace

void raise_graph_failure(const GraphRequestError& failure, const std::string& destination,
                         const std::string& doing) {
  const std::string where = " while " + doing + " for destination \"" + destination + "\"";
  switch (failure.kind()) {
    case GraphRequestError::Kind::Aborted:
      throw ExternalError(Kind::Cancelled, "Graph API request cancelled" + where);
    case GraphRequestError::Kind::TlsVerification:
      throw ExternalError(Kind::Unreachable, failure.what() + where,
                          "If the Graph API is reached through a TLS-inspecting proxy or a "
                          "private CA, name its CA certificate in connector.ca_file.");
    case GraphRequestError::Kind::Transport:
      throw ExternalError(Kind::Unreachable, failure.what() + where,
                          "Check that the server can reach connector.graph_api_url, and "
                          "connector.connect_timeout and connector.request_timeout.");
    case GraphRequestError::Kind::Api:
      break;
  }
  const GraphError& error = failure.error();
  const std::string said = ": " + error.message;
  switch (failure_kind(error)) {
    case Kind::AuthenticationFailed:
      throw ExternalError(Kind::AuthenticationFailed,
                          "the Graph API refused the access token" + where + said,
                          "Issue a new token with the ads_management permission (a System User "
                          "token from Meta Business Settings does not expire); for an existing "
                          "destination set it from a file the server reads, never as SQL text: "
                          "fb_alter_destination('" + destination +
                              "', token_file => '/path/to/new.token').",
                          trace_detail(error));
    case Kind::NotReady:
      if (error.code == 2635)
        throw ExternalError(Kind::NotReady, "the Graph API version is no longer served" + where + said,
                            "Raise connector.graph_api_version to a current version.",
                            trace_detail(error));
      if (classify(error) == ErrorClass::Session)
        throw ExternalError(Kind::NotReady, "the audience is busy with another operation" + where + said,
                            "Try again when its replace session has ended.", trace_detail(error));
      throw ExternalError(Kind::NotReady, "the ad account is not ready for custom audiences" + where + said,
                          "An administrator of the ad account must accept the Custom Audience "
                          "terms and link the account to its Business in Meta Business Settings.",
                          trace_detail(error));
    case Kind::Temporary:
    case Kind::Unreachable:
    case Kind::Cancelled:
      throw ExternalError(Kind::Temporary,
                          "the Graph API is temporarily unavailable or throttling" + where + said,
                          "Try again later.", trace_detail(error));
    case Kind::NotFound:
      throw ExternalError(Kind::NotFound, "the Graph API object does not exist" + where + said,
                          "Check the id; it may have been deleted.", trace_detail(error));
    case Kind::PermissionMissing:
      throw ExternalError(Kind::PermissionMissing, "permission denied by the Graph API" + where + said,
                          "Give the token's user (System User) access to the ad account with the "
                          "Manage campaigns task.",
                          trace_detail(error));
    case Kind::Rejected:
      break;
  }
  throw ExternalError(Kind::Rejected, "the Graph API rejected the request" + where + said, {},
                      trace_detail(error));
}

AccountCheck verify_account_access(GraphClient& client, const std::string& destination,
                                   const std::string& ad_account_id) {
  AccountCheck check;
  try {
    Json me = parse_body(client.send("GET", "/me", {{"fields", "id,name"}}), destination,
                         "checking the access token");
    check.user_id = text_field(me, "id");
    check.user_name = text_field(me, "name");
  } catch (const GraphRequestError& failure) {
    raise_graph_failure(failure, destination, "checking the access token");
  }

  bool ads_management = false;
  try {
    Json permissions = parse_body(client.send("GET", "/me/permissions", {}), destination,
                                  "checking the token's permissions");
    auto data = permissions.find("data");
    if (data != permissions.end() && data->is_array())
      for (const Json& entry : *data)
        if (entry.is_object() && text_field(entry, "permission") == "ads_management" &&
            text_field(entry, "status") == "granted")
          ads_management = true;
  } catch (const GraphRequestError& failure) {
    raise_graph_failure(failure, destination, "checking the token's permissions");
  }
  if (!ads_management)
    throw ExternalError(Kind::PermissionMissing,
                        "the access token of destination \"" + destination +
                            "\" lacks the ads_management permission",
                        "Generate the token with the ads_management permission (in Meta Business "
                        "Settings, System Users, Generate New Token) and set it with "
                        "fb_alter_destination('" + destination +
                            "', token_file => '/path/to/new.token').");

  Json account;
  const std::string doing = "reading ad account act_" + ad_account_id;
  try {
    account = parse_body(client.send("GET", account_path(ad_account_id),
                                     {{"fields", "name,account_status,tos_accepted"}}),
                         destination, doing);
  } catch (const GraphRequestError& failure) {
    if (failure.kind() == GraphRequestError::Kind::Api) {
      ErrorClass error_class = classify(failure.error());
      if (error_class == ErrorClass::Permanent || error_class == ErrorClass::Session)
        throw ExternalError(Kind::NotFound,
                            "ad account act_" + ad_account_id +
                                " is not reachable with the access token of destination \"" +
                                destination + "\": " + failure.error().message,
                            "Check the ad account id, and assign the ad account to the token's "
                            "System User with the Manage campaigns task.",
                            trace_detail(failure.error()));
    }
    raise_graph_failure(failure, destination, doing);
  }
  check.account_name = text_field(account, "name");
  std::int64_t status = integer_field(account, "account_status", 1);
  if (status != 1)
    throw ExternalError(Kind::NotReady,
                        "ad account act_" + ad_account_id + " of destination \"" + destination +
                            "\" is not active (" + account_status_name(status) + ")",
                        "Resolve the account's status in Meta Ads Manager, then try again.");
  auto tos = account.find("tos_accepted");
  bool tos_accepted = tos != account.end() && tos->is_object() &&
                      integer_field(*tos, "custom_audience_tos", 0) == 1;
  if (!tos_accepted)
    throw ExternalError(Kind::NotReady,
                        "the Custom Audience terms are not accepted for ad account act_" +
                            ad_account_id + " of destination \"" + destination + "\"",
                        "A person with admin access to the ad account must accept them at " +
                            tos_url(ad_account_id) + " and then the check can be run again.");
  return check;
}

std::vector<AudienceInfo> list_audiences(GraphClient& client, const std::string& destination,
                                         const std::string& ad_account_id) {
  std::vector<AudienceInfo> audiences;
  std::string after;
  const std::string doing = "listing the audiences of ad account act_" + ad_account_id;
  for (int page = 0; page < kMaxPages; ++page) {
    QueryParameters query = {{"fields", kAudienceFields}, {"limit", "100"}};
    if (!after.empty()) query.emplace_back("after", after);
    Json body;
    try {
      body = parse_body(client.send("GET", account_path(ad_account_id) + "/customaudiences", query),
                        destination, doing);
    } catch (const GraphRequestError& failure) {
      raise_graph_failure(failure, destination, doing);
    }
    auto data = body.find("data");
    if (data != body.end() && data->is_array()) {
      for (const Json& entry : *data) {
        if (entry.is_object()) audiences.push_back(audience_of(entry));
      }
    }
    // Follow the "after" cursor with our own request: paging.next is an
    // absolute URL that may carry a token in its query string.
    auto paging = body.find("paging");
    if (paging == body.end() || !paging->is_object() || !paging->contains("next")) break;
    auto cursors = paging->find("cursors");
    after = cursors != paging->end() && cursors->is_object() ? text_field(*cursors, "after") : "";
    if (after.empty()) break;
  }
  return audiences;
}

AudienceInfo read_audience(GraphClient& client, const std::string& destination,
                           const std::string& audience_id) {
  const std::string doing = "reading audience " + audience_id;
  try {
    return audience_of(
        parse_body(client.send("GET", "/" + audience_id, {{"fields", kAudienceFields}}), destination,
                   doing));
  } catch (const GraphRequestError& failure) {
    raise_graph_failure(failure, destination, doing);
  }
}

std::string create_audience(GraphClient& client, const std::string& destination,
                            const std::string& ad_account_id, const std::string& name,
                            const std::string& description) {
  Json request = {{"name", name},
                  {"subtype", "CUSTOM"},
                  {"customer_file_source", "USER_PROVIDED_ONLY"}};
  if (!description.empty()) request["description"] = description;
  const std::string doing = "creating audience \"" + name + "\"";
  std::string id;
  try {
    Json body = parse_body(client.send("POST", account_path(ad_account_id) + "/customaudiences",
                                       {}, request.dump()),
                           destination, doing);
    id = text_field(body, "id");
  } catch (const GraphRequestError& failure) {
    raise_graph_failure(failure, destination, doing);
  }
  if (id.empty())
    throw ExternalError(Kind::Temporary,
                        "the Graph API did not return the id of the new audience \"" + name +
                            "\" for destination \"" + destination + "\"",
                        "Check with fb_list_audiences whether it was created.");
  return id;
}

void require_audience_in_account(GraphClient& client, const std::string& destination,
                                 const std::string& audience_id, const std::string& ad_account_id) {
  const std::string doing = "reading the ad account of audience " + audience_id;
  std::string account;
  try {
    Json body = parse_body(client.send("GET", "/" + audience_id, {{"fields", "account_id"}}),
                           destination, doing);
    account = text_field(body, "account_id");
  } catch (const GraphRequestError& failure) {
    raise_graph_failure(failure, destination, doing);
  }
  if (account.rfind("act_", 0) == 0) account.erase(0, 4);
  if (account != ad_account_id)
    throw ExternalError(
        Kind::PermissionMissing,
        "audience " + audience_id + " is not in ad account act_" + ad_account_id +
            " of destination \"" + destination + "\"",
        "An export reaches only the audiences of its destination's ad account: pick one from "
        "fb_list_audiences('" + destination + "'), or leave audience_id out to create one.",
        account.empty() ? "The Graph API did not say which ad account it belongs to."
                        : "It belongs to ad account act_" + account + ".");
}

void delete_audience(GraphClient& client, const std::string& destination,
                     const std::string& audience_id) {
  const std::string doing = "deleting audience " + audience_id;
  try {
    client.send("DELETE", "/" + audience_id, {});
  } catch (const GraphRequestError& failure) {
    if (failure.kind() == GraphRequestError::Kind::Api && is_missing_object(failure.error())) return;
    raise_graph_failure(failure, destination, doing);
  }
}

}  // namespace connector
