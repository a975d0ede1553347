// Exceptions the core throws for caller mistakes. The shim turns each kind
// into a PostgreSQL SQLSTATE; anything else thrown is an internal error.
#pragma once

#include <stdexcept>
#include <string>

namespace connector {

// A caller passed an argument the core cannot accept (an unknown key, say).
class InvalidArgument : public std::invalid_argument {
 public:
  InvalidArgument(const std::string& message, std::string hint = {})
      : std::invalid_argument(message), hint_(std::move(hint)) {}
  const std::string& hint() const noexcept { return hint_; }

 private:
  std::string hint_;
};

}  // namespace connector
