// What a destination does at the Graph API outside of exports: check that a
// token can manage an ad account's customer-list audiences, and list, create
// and delete those audiences. Each failure becomes an ExternalError that names
// the destination and the fix.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/graph_client.hpp"

namespace connector {

struct AccountCheck {
  std::string user_id;
  std::string user_name;
  std::string account_name;
};

struct AudienceInfo {
  std::string id;
  std::string name;
  std::string subtype;
  std::string description;
  std::int64_t approximate_count_lower_bound = -1;
  std::int64_t approximate_count_upper_bound = -1;
  int operation_status_code = 0;
  std::string operation_status;
  int delivery_status_code = 0;
  std::string delivery_status;
};

// The token is valid, carries ads_management, the ad account is reachable and
// active, and its Custom Audience terms are accepted.
AccountCheck verify_account_access(GraphClient& client, const std::string& destination,
                                   const std::string& ad_account_id);

// Every custom audience of the ad account, following paging.
std::vector<AudienceInfo> list_audiences(GraphClient& client, const std::string& destination,
                                         const std::string& ad_account_id);

// One audience as Meta reports it now: size bounds, operation and delivery status.
AudienceInfo read_audience(GraphClient& client, const std::string& destination,
                           const std::string& audience_id);

// A new customer-list audience (subtype CUSTOM, customer_file_source
// USER_PROVIDED_ONLY); returns its id.
std::string create_audience(GraphClient& client, const std::string& destination,
                            const std::string& ad_account_id, const std::string& name,
                            const std::string& description);

// Throws ExternalError (PermissionMissing) unless the Graph API says the
// audience belongs to the ad account: a token may reach audiences of other
// accounts, which the destination does not name.
void require_audience_in_account(GraphClient& client, const std::string& destination,
                                 const std::string& audience_id, const std::string& ad_account_id);

// Deletes an audience; one that is already gone counts as deleted.
void delete_audience(GraphClient& client, const std::string& destination,
                     const std::string& audience_id);

// Turns a failed request into the ExternalError a user sees.
[[noreturn]] void raise_graph_failure(const GraphRequestError& failure,
                                      const std::string& destination, const std::string& doing);

}  // namespace connector
