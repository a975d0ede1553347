// Turns whatever a core call threw into a ConnectorStatus: the one funnel
// through which every C++ failure reaches PostgreSQL, with its SQLSTATE.
#pragma once

#include <cstring>
#include <exception>
#include <new>
#include <string_view>

#include "connector_shim.h"
#include "errors.hpp"
#include "graph/graph_client.hpp"

namespace connector::shim {

inline void copy_text(char* destination, std::size_t capacity, std::string_view text) noexcept {
  std::size_t length = text.size() < capacity - 1 ? text.size() : capacity - 1;
  if (length > 0) std::memcpy(destination, text.data(), length);
  destination[length] = '\0';
}

inline void set_status(ConnectorStatus* status, const char* sqlstate, std::string_view message,
                       std::string_view hint = {}, std::string_view detail = {}) noexcept {
  status->code = 1;
  copy_text(status->sqlstate, sizeof status->sqlstate, sqlstate);
  copy_text(status->message, sizeof status->message, message);
  copy_text(status->detail, sizeof status->detail, detail);
  copy_text(status->hint, sizeof status->hint, hint);
}

inline const char* sqlstate_of(ExternalError::Kind kind) noexcept {
  switch (kind) {
    case ExternalError::Kind::AuthenticationFailed:
      return "28000";  // invalid_authorization_specification
    case ExternalError::Kind::PermissionMissing:
      return "42501";  // insufficient_privilege
    case ExternalError::Kind::NotFound:
      return "42704";  // undefined_object
    case ExternalError::Kind::NotReady:
      return "55000";  // object_not_in_prerequisite_state
    case ExternalError::Kind::Temporary:
      return "58000";  // system_error: a failure outside PostgreSQL
    case ExternalError::Kind::Unreachable:
      return "08006";  // connection_failure
    case ExternalError::Kind::Rejected:
      return "22023";  // invalid_parameter_value
    case ExternalError::Kind::Cancelled:
      return "57014";  // query_canceled
  }
  return "XX000";
}

// Call only inside a catch block: classifies the exception being handled.
inline void set_status_from_current_exception(ConnectorStatus* status) noexcept {
  try {
    throw;
  } catch (const InvalidArgument& error) {
    set_status(status, "22023", error.what(), error.hint(), error.detail());
  } catch (const UndefinedColumn& error) {
    set_status(status, "42703", error.what(), error.hint(), error.detail());  // undefined_column
  } catch (const AmbiguousColumn& error) {
    set_status(status, "42702", error.what(), error.hint(), error.detail());  // ambiguous_column
  } catch (const ExternalError& error) {
    set_status(status, sqlstate_of(error.kind()), error.what(), error.hint(), error.detail());
  } catch (const GraphRequestError& error) {
    // Outside a destination call (which turns these into ExternalError): an
    // export's transfers, abandoned on cancel, or unable to connect.
    set_status(status,
               error.kind() == GraphRequestError::Kind::Aborted ? "57014"
               : error.kind() == GraphRequestError::Kind::Api   ? "58000"
                                                                : "08006",
               error.what());
  } catch (const KeyFileError& error) {
    set_status(status, "F0000", error.what(), error.hint(), error.detail());  // config_file_error
  } catch (const SecretError& error) {
    set_status(status, "F0000", error.what(), error.hint(), error.detail());
  } catch (const std::bad_alloc&) {
    set_status(status, "53200", "out of memory in the connector core");
  } catch (const std::exception& error) {
    set_status(status, "XX000", "internal error in the connector core: ");
    std::size_t used = std::strlen(status->message);
    copy_text(status->message + used, sizeof status->message - used, error.what());
  } catch (...) {
    set_status(status, "XX000", "internal error in the connector core: unknown exception");
  }
}

// Runs `body` (returning ConnectorResult) and maps any exception to a status.
template <typename Body>
ConnectorResult guarded(ConnectorStatus* status, Body&& body) noexcept {
  status->code = 0;
  try {
    return body();
  } catch (...) {
    set_status_from_current_exception(status);
    return CONNECTOR_ERROR;
  }
}

}  // namespace connector::shim
