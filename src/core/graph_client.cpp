// libcurl behind the Graph API client. A backend has no threads of its own and
// handles signals itself, so curl runs without signals (CURLOPT_NOSIGNAL) and
// checks for cancellation through the progress callback.

#include "graph_client.hpp"

#include <curl/curl.h>
#include <openssl/crypto.h>

#include <cctype>
#include <ctime>
#include <mutex>

#include "appsecret_proof.hpp"
#include "errors.hpp"

namespace connector {
namespace {

constexpr std::size_t kMaxResponseBytes = 16 * 1024 * 1024;
constexpr const char* kUserAgent = "connector/0.1.0 (PostgreSQL extension)";

void initialize_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw std::runtime_error("libcurl could not be initialized");
  });
}

struct CurlUrl {
  CURLU* url = curl_url();
  ~CurlUrl() { curl_url_cleanup(url); }
};

struct CurlHeaders {
  curl_slist* list = nullptr;
  ~CurlHeaders() { curl_slist_free_all(list); }
  void add(const std::string& line) {
    curl_slist* extended = curl_slist_append(list, line.c_str());
    if (extended == nullptr) throw std::bad_alloc();
    list = extended;
  }
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
  if (body->size() + bytes > kMaxResponseBytes) return 0;  // makes curl fail the transfer
  body->append(data, bytes);
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
    headers->emplace_back(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
  }
  return size * count;
}

int check_abort(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto should_abort = reinterpret_cast<AbortCheck>(user);
  return should_abort != nullptr && should_abort() ? 1 : 0;
}

void redact(std::string& text, const std::string& secret) {
  if (secret.empty()) return;
  for (std::size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at))
    text.replace(at, secret.size(), "[redacted]");
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

}  // namespace

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
  initialize_curl_once();
  while (!settings_.base_url.empty() && settings_.base_url.back() == '/')
    settings_.base_url.pop_back();

  CurlUrl url;
  char* scheme = nullptr;
  char* host = nullptr;
  if (curl_url_set(url.url, CURLUPART_URL, settings_.base_url.c_str(), 0) != CURLUE_OK ||
      curl_url_get(url.url, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(url.url, CURLUPART_HOST, &host, 0) != CURLUE_OK)
    throw InvalidArgument("connector.graph_api_url \"" + settings_.base_url + "\" is not a URL",
                          "Use https://graph.facebook.com.");
  std::string scheme_text(scheme);
  std::string host_text(host);
  curl_free(scheme);
  curl_free(host);
  if (scheme_text != "https" && !(scheme_text == "http" && is_loopback_host(host_text)))
    throw InvalidArgument("connector.graph_api_url \"" + settings_.base_url +
                              "\" is not an https URL",
                          "Access tokens are only sent over HTTPS; plain http is allowed only to "
                          "a loopback host such as a local Graph API simulator.");
  if (!is_valid_api_version(settings_.api_version))
    throw InvalidArgument("connector.graph_api_version \"" + settings_.api_version +
                              "\" is not a Graph API version",
                          "Use the form v26.0.");

  handle_->curl = curl_easy_init();
  if (handle_->curl == nullptr) throw std::bad_alloc();
}

GraphClient::~GraphClient() = default;

GraphResponse GraphClient::send(std::string_view method, std::string_view path,
                                const QueryParameters& query, std::string_view json_body) {
  CURL* curl = handle_->curl;
  curl_easy_reset(curl);  // keeps the connection cache: verification reuses one connection

  std::string url = settings_.base_url + "/" + settings_.api_version + std::string(path);
  char separator = '?';
  auto append_parameter = [&](std::string_view name, std::string_view value) {
    url += separator;
    url += escape(curl, name);
    url += '=';
    url += escape(curl, value);
    separator = '&';
  };
  for (const auto& [name, value] : query) append_parameter(name, value);
  if (!credentials_.app_secret.empty()) {
    std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    append_parameter("appsecret_proof",
                     appsecret_proof(credentials_.app_secret, credentials_.access_token, now));
    append_parameter("appsecret_time", std::to_string(now));
  }

  CurlHeaders headers;
  std::string authorization = "Authorization: Bearer " + credentials_.access_token;
  WipeOnExit wipe_authorization{authorization};
  headers.add(authorization);
  headers.add("Accept: application/json");
  headers.add("Expect:");  // no 100-continue round trip before large payloads
  if (!json_body.empty()) headers.add("Content-Type: application/json");

  GraphResponse response;
  char error_buffer[CURL_ERROR_SIZE] = "";
  bool https_only = url.rfind("https://", 0) == 0;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, std::string(method).c_str());
  if (method == "GET") curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  if (!json_body.empty() || method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json_body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(json_body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.list);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, https_only ? "https" : "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!settings_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, settings_.ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, settings_.connect_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, settings_.request_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, kUserAgent);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response.headers);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, check_abort);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, reinterpret_cast<void*>(should_abort_));

  CURLcode result = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);  // the list dies with this frame
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  if (result == CURLE_ABORTED_BY_CALLBACK)
    throw GraphRequestError(GraphRequestError::Kind::Aborted, "Graph API request cancelled");
  if (result == CURLE_PEER_FAILED_VERIFICATION || result == CURLE_SSL_CACERT_BADFILE ||
      result == CURLE_SSL_CERTPROBLEM)
    throw GraphRequestError(GraphRequestError::Kind::TlsVerification,
                            std::string("TLS certificate verification failed for ") +
                                settings_.base_url + ": " +
                                (error_buffer[0] ? error_buffer : curl_easy_strerror(result)));
  if (result != CURLE_OK)
    throw GraphRequestError(GraphRequestError::Kind::Transport,
                            std::string("Graph API request to ") + settings_.base_url +
                                " failed: " +
                                (error_buffer[0] ? error_buffer : curl_easy_strerror(result)));
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.http_status);
  if (!response.ok()) {
    GraphError error = parse_graph_error(response.http_status, response.body);
    // Meta does not echo credentials, but whatever answers at the configured
    // URL might: no secret reaches a message.
    for (std::string* text : {&error.message, &error.user_title, &error.user_message}) {
      redact(*text, credentials_.access_token);
      redact(*text, credentials_.app_secret);
    }
    throw GraphRequestError(GraphRequestError::Kind::Api, error.message, std::move(error));
  }
  return response;
}

}  // namespace connector
