// Exceptions the core throws for conditions a user can act on. Each carries a
// message naming the object, an optional detail and a hint saying the fix; the
// shim turns each kind into a PostgreSQL SQLSTATE. Anything else thrown is an
// internal error. No message ever holds a secret.
#pragma once

#include <stdexcept>
#include <string>

namespace connector {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string hint = {}, std::string detail = {})
      : std::runtime_error(message), hint_(std::move(hint)), detail_(std::move(detail)) {}
  const std::string& hint() const noexcept { return hint_; }
  const std::string& detail() const noexcept { return detail_; }

 private:
  std::string hint_;
  std::string detail_;
};

// A caller passed an argument the core cannot accept (an unknown key, say).
class InvalidArgument : public Error {
  using Error::Error;
};

// A segment column named by a mapping does not exist.
class UndefinedColumn : public Error {
  using Error::Error;
};

// Two segment columns fit one key by name, and no mapping chose between them.
class AmbiguousColumn : public Error {
  using Error::Error;
};

// The key file that encrypts stored secrets is missing, unsafe or unusable.
class KeyFileError : public Error {
  using Error::Error;
};

// The key file does not exist. Told apart from the other key file errors
// because what to do depends on what the caller knows: whether secrets sealed
// with the lost key are stored, and which key sealed them.
class MissingKeyFileError : public KeyFileError {
  using KeyFileError::KeyFileError;
};

// A stored secret cannot be sealed or opened: wrong key file, altered data or a
// blob moved to another field.
class SecretError : public Error {
  using Error::Error;
};

// The Graph API (or the way to it) did not do what was asked.
class ExternalError : public Error {
 public:
  enum class Kind {
    AuthenticationFailed,  // the token was refused: a new one is needed
    PermissionMissing,     // the token or its user lacks a permission
    NotFound,              // an ad account or audience does not exist for this token
    NotReady,              // an administrator must act at Meta first (terms, account status)
    Temporary,             // throttled or unavailable: try again later
    Unreachable,           // no answer: network, TLS, timeout
    Rejected,              // the request itself was refused
    Cancelled,             // abandoned on query cancel or shutdown
  };
  ExternalError(Kind kind, const std::string& message, std::string hint = {},
                std::string detail = {})
      : Error(message, std::move(hint), std::move(detail)), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

}  // namespace connector
