// appsecret_proof (docs/graph-api.md section 6.2): with "Require App Secret" on, Graph
// rejects calls whose token does not come with an HMAC of it keyed by the app
// secret, so a leaked token alone is useless to anyone without the secret.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace connector {

// hex(HMAC-SHA256(key = app_secret, msg = access_token)), 64 lowercase
// characters: the classic form, valid for the token's lifetime.
std::string appsecret_proof(std::string_view app_secret, std::string_view access_token);

// hex(HMAC-SHA256(key = app_secret, msg = access_token + "|" + decimal
// unix_seconds)): the time-stamped form, sent with appsecret_time=unix_seconds
// and valid for five minutes, so compute it afresh for every request and retry.
std::string appsecret_proof(std::string_view app_secret, std::string_view access_token,
                            std::int64_t unix_seconds);

}  // namespace connector
