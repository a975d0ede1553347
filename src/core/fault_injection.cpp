#include "fault_injection.hpp"

#include <atomic>
#include <new>
#include <stdexcept>

namespace connector::fault_injection {
namespace {
std::atomic<Fault> armed{Fault::None};
}

void arm(Fault fault) noexcept { armed.store(fault, std::memory_order_relaxed); }

void throw_if_armed() {
  switch (armed.load(std::memory_order_relaxed)) {
    case Fault::None:
      return;
    case Fault::OutOfMemory:
      throw std::bad_alloc();
    case Fault::InternalError:
      throw std::logic_error("injected internal error");
  }
}

}  // namespace connector::fault_injection
