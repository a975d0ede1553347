// The synchronous Graph API client: one easy handle, one request at a time.
// How a request is built and what its answer means is in graph_request.cpp,
// shared with the upload engine; this file only runs it to completion.

#include "graph/graph_client.hpp"

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "graph/graph_request.hpp"

namespace connector {

Credentials::~Credentials() {
  OPENSSL_cleanse(access_token.data(), access_token.size());
  OPENSSL_cleanse(app_secret.data(), app_secret.size());
}

bool is_loopback_host(std::string_view host) noexcept {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  if (host.rfind("127.", 0) != 0) return false;
  return host.find_first_not_of("0123456789.") == std::string_view::npos;
}

struct GraphClient::Handle {
  CURL* curl = nullptr;
  ~Handle() {
    if (curl != nullptr) curl_easy_cleanup(curl);
  }
};

GraphClient::GraphClient(GraphSettings settings, const Credentials& credentials,
                         AbortCheck should_abort)
    : settings_(std::move(settings)),
      credentials_(credentials),
      should_abort_(should_abort),
      handle_(std::make_unique<Handle>()) {
  initialize_curl();
  check_graph_settings(settings_);
  handle_->curl = curl_easy_init();
  if (handle_->curl == nullptr) throw std::bad_alloc();
}

GraphClient::~GraphClient() = default;

GraphResponse GraphClient::send(std::string_view method, std::string_view path,
                                const QueryParameters& query, std::string_view json_body) {
  CURL* curl = handle_->curl;
  GraphRequest request;
  request.prepare(curl, settings_, credentials_, method, path, query, json_body, should_abort_);
  CURLcode result = curl_easy_perform(curl);
  request.release(curl);
  if (result != CURLE_OK) throw request.transfer_error(result, settings_, credentials_);
  GraphResponse response = std::move(request.response());
  if (!response.ok()) {
    GraphError error = api_error(response, credentials_);
    // Copied first: the order in which arguments are initialized is unspecified,
    // and a message read from a moved-from error would be empty.
    std::string message = error.message;
    throw GraphRequestError(GraphRequestError::Kind::Api, message, std::move(error));
  }
  return response;
}

}  // namespace connector
