// noexcept wrappers over the core's identifier functions for the C side.

#include <string>

#include "connector_shim.h"
#include "fault_injection.hpp"
#include "identifiers/identifier.hpp"
#include "identifiers/keys.hpp"
#include "status.hpp"

namespace {

using connector::Key;
using connector::shim::guarded;

// The result of the last call, handed to C without a copy. A backend is single
// threaded; thread_local keeps the core usable from threaded unit tests too.
std::string& result_buffer() {
  thread_local std::string buffer;
  return buffer;
}

ConnectorResult hand_over(bool has_value, const char** out, size_t* out_len) {
  if (!has_value) return CONNECTOR_NO_VALUE;
  *out = result_buffer().data();
  *out_len = result_buffer().size();
  return CONNECTOR_VALUE;
}

Key key_from_id(int key_id) {
  if (key_id < 0 || static_cast<std::size_t>(key_id) >= connector::key_count)
    throw std::out_of_range("key id out of range");
  return static_cast<Key>(key_id);
}

}  // namespace

extern "C" ConnectorResult connector_find_key(const char* name, size_t name_len, int* key_id,
                                              ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    *key_id = static_cast<int>(connector::parse_key({name, name_len}));
    return CONNECTOR_VALUE;
  });
}

extern "C" ConnectorResult connector_normalize(int key_id, const char* value, size_t value_len,
                                               const char** out, size_t* out_len,
                                               ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    bool has_value =
        connector::normalize_identifier(key_from_id(key_id), {value, value_len}, result_buffer());
    return hand_over(has_value, out, out_len);
  });
}

extern "C" ConnectorResult connector_hash(int key_id, const char* value, size_t value_len,
                                          const char** out, size_t* out_len,
                                          ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    bool has_value =
        connector::hash_identifier(key_from_id(key_id), {value, value_len}, result_buffer());
    return hand_over(has_value, out, out_len);
  });
}

extern "C" ConnectorResult connector_normalize_dob(const char* value, size_t value_len,
                                                   const char* date_order, size_t date_order_len,
                                                   const char** out, size_t* out_len,
                                                   ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    connector::DateOrder order = connector::parse_date_order({date_order, date_order_len});
    bool has_value = connector::normalize_identifier(Key::DateOfBirth, {value, value_len}, order,
                                                     result_buffer());
    return hand_over(has_value, out, out_len);
  });
}

extern "C" ConnectorResult connector_normalize_phone(const char* value, size_t value_len,
                                                     const char* country, size_t country_len,
                                                     const char** out, size_t* out_len,
                                                     ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    bool has_value =
        connector::normalize_phone({value, value_len}, {country, country_len}, result_buffer()) ==
        connector::PhoneOutcome::Valid;
    return hand_over(has_value, out, out_len);
  });
}

extern "C" ConnectorResult connector_hash_phone(const char* value, size_t value_len,
                                                const char* country, size_t country_len,
                                                const char** out, size_t* out_len,
                                                ConnectorStatus* status) noexcept {
  return guarded(status, [&] {
    bool has_value =
        connector::hash_phone({value, value_len}, {country, country_len}, result_buffer());
    return hand_over(has_value, out, out_len);
  });
}

extern "C" void connector_inject_fault(int fault) noexcept {
  using connector::fault_injection::Fault;
  connector::fault_injection::arm(fault == 1   ? Fault::OutOfMemory
                                  : fault == 2 ? Fault::InternalError
                                               : Fault::None);
}
