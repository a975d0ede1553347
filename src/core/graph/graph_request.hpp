// One Graph API request on a libcurl easy handle: the URL, the headers, the
// TLS and protocol options, appsecret_proof, and the reading and redaction of
// the answer. The synchronous GraphClient and the UploadEngine both build their
// requests here, so the rules that protect the access token (TLS verified, no
// redirects, the token in a header and never in a URL or a message) are
// written once.
#pragma once

#include <curl/curl.h>

#include <string>
#include <string_view>

#include "graph/graph_client.hpp"

namespace connector {

// Responses larger than this fail the transfer: no Graph answer comes close,
// and a hostile endpoint must not make a backend allocate without bound.
inline constexpr std::size_t kMaxGraphResponseBytes = 16 * 1024 * 1024;

// curl_global_init, once per process. Throws when libcurl cannot start.
void initialize_curl();

// Drops trailing slashes from the base URL, then checks that it is https (or
// http to a loopback host) and that the API version looks like vNN.N. Throws
// InvalidArgument with a hint otherwise.
void check_graph_settings(GraphSettings& settings);

// The state curl points into while it runs one request. It must stay at one
// address from prepare() to release(): keep it in a node, never in a vector.
class GraphRequest {
 public:
  GraphRequest() = default;
  ~GraphRequest();  // wipes and frees the header list (it holds the token)
  GraphRequest(const GraphRequest&) = delete;
  GraphRequest& operator=(const GraphRequest&) = delete;

  // Resets `curl` (its connection cache survives) and sets every option of one
  // request: `path` starts with '/' after the version; `body`, when not empty,
  // is sent as JSON and must outlive the transfer. A fresh time-stamped
  // appsecret_proof is computed on every call when an app secret is set. With
  // `should_abort`, the transfer polls it and is abandoned when it turns true.
  void prepare(CURL* curl, const GraphSettings& settings, const Credentials& credentials,
               std::string_view method, std::string_view path, const QueryParameters& query,
               std::string_view body, AbortCheck should_abort);

  // After the transfer: clears the handle's pointers into this object and
  // reads the HTTP status. Safe to call more than once.
  void release(CURL* curl) noexcept;

  GraphResponse& response() noexcept { return response_; }

  // The error for a transfer that ended with `result` != CURLE_OK: Aborted,
  // TlsVerification or Transport, its message free of any credential.
  GraphRequestError transfer_error(CURLcode result, const GraphSettings& settings,
                                   const Credentials& credentials) const;

 private:
  std::string url_;
  curl_slist* headers_ = nullptr;
  GraphResponse response_;
  char error_buffer_[CURL_ERROR_SIZE] = "";
};

// The Graph error carried by a non-2xx response, with any credential that an
// endpoint echoed replaced by "[redacted]".
GraphError api_error(const GraphResponse& response, const Credentials& credentials);

// Replaces every occurrence of `secret` in `text` by "[redacted]".
void redact(std::string& text, const std::string& secret);

}  // namespace connector
