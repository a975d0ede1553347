// A test hook: makes the next core calls throw, so that tests can prove an
// exception anywhere in the core becomes an ordinary error and never crosses
// into PostgreSQL. Disarmed, it costs one relaxed atomic load per call.
#pragma once

namespace connector::fault_injection {

enum class Fault { None, OutOfMemory, InternalError };

void arm(Fault fault) noexcept;

// Throws std::bad_alloc or std::logic_error while a fault is armed.
void throw_if_armed();

}  // namespace connector::fault_injection
