// noexcept wrappers for destinations: secrets at rest and the Graph API calls
// made outside exports. Secrets pass through here only as long as a call needs
// them and are wiped afterwards.

#include <openssl/crypto.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "connector_shim.h"
#include "errors.hpp"
#include "graph/graph_account.hpp"
#include "graph_config.hpp"
#include "secrets/key_file.hpp"
#include "secrets/secret_box.hpp"
#include "status.hpp"

struct ConnectorAudienceList {
  std::vector<connector::AudienceInfo> audiences;
};

namespace {

using connector::shim::credentials_of;
using connector::shim::guarded;
using connector::shim::settings_of;

std::string& sealed_buffer() {
  thread_local std::string buffer;
  return buffer;
}

std::string& opened_secret() {
  thread_local std::string secret;
  return secret;
}

std::string& audience_id_buffer() {
  thread_local std::string buffer;
  return buffer;
}

void wipe(std::string& text) {
  OPENSSL_cleanse(text.data(), text.size());
  text.clear();
}

// A new key would leave every stored secret unreadable with nothing saying
// why, so a missing key file is created only while no secret is stored.
connector::SecretKey key_for_sealing(const char* key_path, bool create_key_if_missing) {
  try {
    return connector::load_or_create_key(key_path, create_key_if_missing);
  } catch (const connector::MissingKeyFileError&) {
    if (create_key_if_missing) throw;  // deleted during creation: the plain message fits
    std::string path(key_path);
    throw connector::KeyFileError(
        "key file \"" + path +
            "\" does not exist, and secrets sealed with another key are stored, so no new key "
            "is created automatically",
        "restore the key file from your backup, or correct connector.key_file; if the key is "
        "lost for good, create a new one deliberately as the operating system user that runs "
        "PostgreSQL: (umask 077; openssl rand -hex 32 > " +
            path +
            "), then set each destination's access token (and app secret, if it has one) "
            "again with fb_alter_destination");
  }
}

// The fingerprint in the blob tells the administrator which backup to restore.
connector::SecretKey key_for_opening(const char* key_path, std::string_view sealed) {
  try {
    return connector::load_or_create_key(key_path, false);
  } catch (const connector::MissingKeyFileError& error) {
    std::string fingerprint = connector::sealed_key_fingerprint(sealed);
    throw connector::KeyFileError(
        std::string(error.what()) + "; the secret was sealed with key " + fingerprint,
        "restore the key file with fingerprint " + fingerprint +
            " at connector.key_file, or set the secret again with fb_alter_destination");
  }
}

// A client with the config's credentials, which live exactly as long as it.
struct ConfiguredClient {
  connector::Credentials credentials;
  connector::GraphClient client;
  explicit ConfiguredClient(const ConnectorGraphConfig& config)
      : credentials(credentials_of(config)),
        client(settings_of(config), credentials, config.should_abort) {}
};

}  // namespace

extern "C" ConnectorResult connector_seal_secret(const char* key_path, bool create_key_if_missing,
                                                 const char* plaintext, size_t plaintext_len,
                                                 const char* context, const char** out,
                                                 size_t* out_len,
                                                 ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    connector::SecretKey key = key_for_sealing(key_path, create_key_if_missing);
    sealed_buffer() = connector::seal_secret(key, {plaintext, plaintext_len}, context);
    *out = sealed_buffer().data();
    *out_len = sealed_buffer().size();
    return CONNECTOR_VALUE;
  });
}

extern "C" ConnectorResult connector_open_secret(const char* key_path, const char* sealed,
                                                 size_t sealed_len, const char* context,
                                                 const char* description, const char** out,
                                                 size_t* out_len,
                                                 ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    std::string_view blob(sealed, sealed_len);
    try {
      connector::SecretKey key = key_for_opening(key_path, blob);
      wipe(opened_secret());
      opened_secret() = connector::open_secret(key, blob, context);
    } catch (const connector::Error& error) {
      // Say which secret could not be opened; the cause follows.
      throw connector::SecretError(
          std::string("cannot decrypt ") + description + ": " + error.what(), error.hint());
    }
    *out = opened_secret().data();
    *out_len = opened_secret().size();
    return CONNECTOR_VALUE;
  });
}

extern "C" void connector_forget_secret(void) noexcept { wipe(opened_secret()); }

extern "C" ConnectorResult connector_verify_account(const ConnectorGraphConfig* config,
                                                    const char* destination,
                                                    const char* ad_account_id,
                                                    ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    ConfiguredClient configured(*config);
    connector::verify_account_access(configured.client, destination, ad_account_id);
    return CONNECTOR_VALUE;
  });
}

extern "C" ConnectorAudienceList* connector_list_audiences(const ConnectorGraphConfig* config,
                                                           const char* destination,
                                                           const char* ad_account_id,
                                                           ConnectorStatus* status) noexcept {
  std::unique_ptr<ConnectorAudienceList> list;
  ConnectorResult result = guarded(status, [&] {
    ConfiguredClient configured(*config);
    list = std::make_unique<ConnectorAudienceList>();
    list->audiences = connector::list_audiences(configured.client, destination, ad_account_id);
    return CONNECTOR_VALUE;
  });
  return result == CONNECTOR_VALUE ? list.release() : nullptr;
}

extern "C" ConnectorAudienceList* connector_read_audience(const ConnectorGraphConfig* config,
                                                          const char* destination,
                                                          const char* audience_id,
                                                          ConnectorStatus* status) noexcept {
  std::unique_ptr<ConnectorAudienceList> list;
  ConnectorResult result = guarded(status, [&] {
    ConfiguredClient configured(*config);
    list = std::make_unique<ConnectorAudienceList>();
    list->audiences.push_back(connector::read_audience(configured.client, destination, audience_id));
    return CONNECTOR_VALUE;
  });
  return result == CONNECTOR_VALUE ? list.release() : nullptr;
}

extern "C" size_t connector_audience_count(const ConnectorAudienceList* list) noexcept {
  return list->audiences.size();
}

extern "C" ConnectorAudience connector_audience_at(const ConnectorAudienceList* list,
                                                   size_t index) noexcept {
  const connector::AudienceInfo& info = list->audiences[index];
  return ConnectorAudience{info.id.c_str(),
                           info.name.c_str(),
                           info.subtype.c_str(),
                           info.description.c_str(),
                           info.approximate_count_lower_bound,
                           info.approximate_count_upper_bound,
                           info.operation_status_code,
                           info.operation_status.c_str(),
                           info.delivery_status_code,
                           info.delivery_status.c_str()};
}

extern "C" void connector_free_audience_list(ConnectorAudienceList* list) noexcept { delete list; }

extern "C" ConnectorResult connector_create_audience(const ConnectorGraphConfig* config,
                                                     const char* destination,
                                                     const char* ad_account_id, const char* name,
                                                     const char* description,
                                                     const char** audience_id,
                                                     size_t* audience_id_len,
                                                     ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    ConfiguredClient configured(*config);
    audience_id_buffer() = connector::create_audience(configured.client, destination,
                                                      ad_account_id, name, description);
    *audience_id = audience_id_buffer().data();
    *audience_id_len = audience_id_buffer().size();
    return CONNECTOR_VALUE;
  });
}

extern "C" ConnectorResult connector_check_audience_account(const ConnectorGraphConfig* config,
                                                            const char* destination,
                                                            const char* audience_id,
                                                            const char* ad_account_id,
                                                            ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    ConfiguredClient configured(*config);
    connector::require_audience_in_account(configured.client, destination, audience_id,
                                           ad_account_id);
    return CONNECTOR_VALUE;
  });
}

extern "C" ConnectorResult connector_delete_audience(const ConnectorGraphConfig* config,
                                                     const char* destination,
                                                     const char* audience_id,
                                                     ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    ConfiguredClient configured(*config);
    connector::delete_audience(configured.client, destination, audience_id);
    return CONNECTOR_VALUE;
  });
}
