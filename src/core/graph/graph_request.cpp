// libcurl options for one Graph API request. A backend has no threads of its
// own and handles signals itself, so curl runs without signals (NOSIGNAL) and
// cancellation is checked by the caller or through the progress callback.

#include "graph/graph_request.hpp"

#include <openssl/crypto.h>

#include <cctype>
#include <cstring>
#include <ctime>
#include <mutex>

#include "errors.hpp"
#include "graph/appsecret_proof.hpp"

namespace connector {
namespace {

constexpr const char* kUserAgent = "connector/0.1.0 (PostgreSQL extension)";

struct CurlUrl {
  CURLU* url = curl_url();
  ~CurlUrl() { curl_url_cleanup(url); }
};

// Zeroes a string that held a secret before its memory is released.
struct WipeOnExit {
  std::string& text;
  ~WipeOnExit() { OPENSSL_cleanse(text.data(), text.size()); }
};

std::string escape(CURL* curl, std::string_view text) {
  char* escaped = curl_easy_escape(curl, text.data(), static_cast<int>(text.size()));
  if (escaped == nullptr) throw std::bad_alloc();
  std::string result(escaped);
  curl_free(escaped);
  return result;
}

std::size_t collect_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  std::size_t bytes = size * count;
  if (body->size() + bytes > kMaxGraphResponseBytes) return 0;  // makes curl fail the transfer
  try {
    body->append(data, bytes);
  } catch (...) {
    return 0;  // no exception may cross curl's C frames
  }
  return bytes;
}

std::size_t collect_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* headers = static_cast<Headers*>(user);
  std::string_view line(data, size * count);
  std::size_t colon = line.find(':');
  if (line.rfind("HTTP/", 0) == 0) headers->clear();  // a new response (after 100 Continue)
  if (colon != std::string_view::npos) {
    auto trim = [](std::string_view text) {
      while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
        text.remove_prefix(1);
      while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
        text.remove_suffix(1);
      return std::string(text);
    };
    try {
      headers->emplace_back(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
    } catch (...) {
      return 0;
    }
  }
  return size * count;
}

int check_abort(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto should_abort = reinterpret_cast<AbortCheck>(user);
  return should_abort != nullptr && should_abort() ? 1 : 0;
}

bool is_valid_api_version(std::string_view version) {
  // vMAJOR.MINOR, as Meta numbers its versions.
  if (version.size() < 4 || version.front() != 'v') return false;
  std::size_t dot = version.find('.');
  if (dot == std::string_view::npos || dot == 1 || dot + 1 == version.size()) return false;
  for (std::size_t i = 1; i < version.size(); ++i)
    if (i != dot && !std::isdigit(static_cast<unsigned char>(version[i]))) return false;
  return true;
}

// The list holds the Authorization line; curl_slist_free_all would leave the
// token in freed memory.
void wipe_and_free(curl_slist*& list) noexcept {
  for (curl_slist* item = list; item != nullptr; item = item->next)
    if (item->data != nullptr) OPENSSL_cleanse(item->data, std::strlen(item->data));
  curl_slist_free_all(list);
  list = nullptr;
}

void add_header(curl_slist*& list, const std::string& line) {
  curl_slist* extended = curl_slist_append(list, line.c_str());
  if (extended == nullptr) throw std::bad_alloc();
  list = extended;
}

}  // namespace

void initialize_curl() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw std::runtime_error("libcurl could not be initialized");
  });
}

void check_graph_settings(GraphSettings& settings) {
  while (!settings.base_url.empty() && settings.base_url.back() == '/')
    settings.base_url.pop_back();

  CurlUrl url;
  char* scheme = nullptr;
  char* host = nullptr;
  if (curl_url_set(url.url, CURLUPART_URL, settings.base_url.c_str(), 0) != CURLUE_OK ||
      curl_url_get(url.url, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(url.url, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    curl_free(scheme);
    throw InvalidArgument("connector.graph_api_url \"" + settings.base_url + "\" is not a URL",
                          "Use https://graph.facebook.com.");
  }
  std::string scheme_text(scheme);
  std::string host_text(host);
  curl_free(scheme);
  curl_free(host);
  if (scheme_text != "https" && !(scheme_text == "http" && is_loopback_host(host_text)))
    throw InvalidArgument(
        "connector.graph_api_url \"" + settings.base_url + "\" is not an https URL",
        "Access tokens are only sent over HTTPS; plain http is allowed only to "
        "a loopback host such as a local Graph API simulator.");
  if (!is_valid_api_version(settings.api_version))
    throw InvalidArgument(
        "connector.graph_api_version \"" + settings.api_version + "\" is not a Graph API version",
        "Use the form v26.0.");
}

void redact(std::string& text, const std::string& secret) {
  if (secret.empty()) return;
  for (std::size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at))
    text.replace(at, secret.size(), "[redacted]");
}

GraphRequest::~GraphRequest() { wipe_and_free(headers_); }

void GraphRequest::prepare(CURL* curl, const GraphSettings& settings,
                           const Credentials& credentials, std::string_view method,
                           std::string_view path, const QueryParameters& query,
                           std::string_view body, AbortCheck should_abort) {
  curl_easy_reset(curl);  // keeps the connection cache
  wipe_and_free(headers_);
  response_ = GraphResponse();
  error_buffer_[0] = '\0';

  url_ = settings.base_url + "/" + settings.api_version + std::string(path);
  char separator = '?';
  auto append_parameter = [&](std::string_view name, std::string_view value) {
    url_ += separator;
    url_ += escape(curl, name);
    url_ += '=';
    url_ += escape(curl, value);
    separator = '&';
  };
  for (const auto& [name, value] : query) append_parameter(name, value);
  if (!credentials.app_secret.empty()) {
    // Time-stamped, so valid for five minutes: computed again for every attempt.
    std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    append_parameter("appsecret_proof",
                     appsecret_proof(credentials.app_secret, credentials.access_token, now));
    append_parameter("appsecret_time", std::to_string(now));
  }

  std::string authorization = "Authorization: Bearer " + credentials.access_token;
  WipeOnExit wipe_authorization{authorization};
  add_header(headers_, authorization);
  add_header(headers_, "Accept: application/json");
  add_header(headers_, "Expect:");  // no 100-continue round trip before large payloads
  if (!body.empty()) add_header(headers_, "Content-Type: application/json");

  bool https_only = url_.rfind("https://", 0) == 0;
  curl_easy_setopt(curl, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, std::string(method).c_str());
  if (method == "GET") curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  if (!body.empty() || method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers_);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, https_only ? "https" : "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!settings.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, settings.ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, settings.connect_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, settings.request_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, kUserAgent);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer_);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response_.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response_.headers);
  if (should_abort != nullptr) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, check_abort);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, reinterpret_cast<void*>(should_abort));
  }
}

void GraphRequest::release(CURL* curl) noexcept {
  long status = 0;
  if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status > 0)
    response_.http_status = status;
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);  // the list dies with this object
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, nullptr);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, nullptr);
}

GraphRequestError GraphRequest::transfer_error(CURLcode result, const GraphSettings& settings,
                                               const Credentials& credentials) const {
  if (result == CURLE_ABORTED_BY_CALLBACK)
    return GraphRequestError(GraphRequestError::Kind::Aborted, "Graph API request cancelled");
  std::string reason = error_buffer_[0] ? error_buffer_ : curl_easy_strerror(result);
  redact(reason, credentials.access_token);
  redact(reason, credentials.app_secret);
  if (result == CURLE_PEER_FAILED_VERIFICATION || result == CURLE_SSL_CACERT_BADFILE ||
      result == CURLE_SSL_CERTPROBLEM)
    return GraphRequestError(
        GraphRequestError::Kind::TlsVerification,
        "TLS certificate verification failed for " + settings.base_url + ": " + reason);
  return GraphRequestError(GraphRequestError::Kind::Transport,
                           "Graph API request to " + settings.base_url + " failed: " + reason);
}

GraphError api_error(const GraphResponse& response, const Credentials& credentials) {
  GraphError error = parse_graph_error(response.http_status, response.body);
  // Meta does not echo credentials, but whatever answers at the configured URL
  // might: no secret reaches a message.
  for (std::string* text : {&error.message, &error.user_title, &error.user_message}) {
    redact(*text, credentials.access_token);
    redact(*text, credentials.app_secret);
  }
  return error;
}

}  // namespace connector
