// The Graph API client: HTTPS requests to graph.facebook.com (or the local
// simulator) with libcurl. It owns every transport rule that protects the
// access token: TLS with certificate verification, plain http only to a
// loopback host, no redirects, the token in a header and never in a URL or a
// message, appsecret_proof on every request when an app secret is set.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "graph/graph_error.hpp"

namespace connector {

struct GraphSettings {
  std::string base_url = "https://graph.facebook.com";
  std::string api_version = "v26.0";
  std::string ca_file;  // empty: the system's trusted CAs
  long connect_timeout_ms = 10'000;
  long request_timeout_ms = 120'000;
};

struct Credentials {
  std::string access_token;
  std::string app_secret;  // empty when none is set
  ~Credentials();          // wipes both
};

// Polled while a request is in flight; returning true abandons it (query
// cancel, backend termination). Must not throw or longjmp.
using AbortCheck = bool (*)();

using Headers = std::vector<std::pair<std::string, std::string>>;
using QueryParameters = std::vector<std::pair<std::string, std::string>>;

struct GraphResponse {
  long http_status = 0;  // 0 when no response arrived
  std::string body;
  Headers headers;
  bool ok() const noexcept { return http_status >= 200 && http_status < 300; }
};

// A request that did not get a usable answer: a transport failure, an abort,
// or a Graph API error. Carries the parsed error and its class.
class GraphRequestError : public std::runtime_error {
 public:
  enum class Kind { Transport, TlsVerification, Aborted, Api };
  GraphRequestError(Kind kind, const std::string& message, GraphError error = {})
      : std::runtime_error(message), kind_(kind), error_(std::move(error)) {}
  Kind kind() const noexcept { return kind_; }
  const GraphError& error() const noexcept { return error_; }

 private:
  Kind kind_;
  GraphError error_;
};

class GraphClient {
 public:
  // Throws InvalidArgument for a base URL that is not https (or http to a
  // loopback host) or a malformed API version.
  GraphClient(GraphSettings settings, const Credentials& credentials, AbortCheck should_abort);
  ~GraphClient();
  GraphClient(const GraphClient&) = delete;
  GraphClient& operator=(const GraphClient&) = delete;

  // Sends one request and returns the response when it is a 2xx; throws
  // GraphRequestError otherwise. `path` starts with '/', after the version.
  GraphResponse send(std::string_view method, std::string_view path, const QueryParameters& query,
                     std::string_view json_body = {});

  const GraphSettings& settings() const noexcept { return settings_; }

 private:
  struct Handle;
  GraphSettings settings_;
  const Credentials& credentials_;
  AbortCheck should_abort_;
  std::unique_ptr<Handle> handle_;
};

// True for localhost, 127.0.0.0/8 and ::1: the only hosts plain http may reach.
bool is_loopback_host(std::string_view host) noexcept;

}  // namespace connector
