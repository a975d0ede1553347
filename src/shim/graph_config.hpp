// The C side's ConnectorGraphConfig as the core's settings and credentials.
#pragma once

#include "connector_shim.h"
#include "graph/graph_client.hpp"

namespace connector::shim {

inline GraphSettings settings_of(const ConnectorGraphConfig& config) {
  GraphSettings settings;
  settings.base_url = config.base_url;
  settings.api_version = config.api_version;
  settings.ca_file = config.ca_file != nullptr ? config.ca_file : "";
  settings.connect_timeout_ms = config.connect_timeout_ms;
  settings.request_timeout_ms = config.request_timeout_ms;
  return settings;
}

inline Credentials credentials_of(const ConnectorGraphConfig& config) {
  return Credentials{config.access_token, config.app_secret != nullptr ? config.app_secret : ""};
}

}  // namespace connector::shim
