// Work for a second core, on a thread of its own that never receives the
// process's signals: PostgreSQL's handlers (cancel, terminate, latches) must
// run on the backend's own thread, so the new thread starts with every signal
// blocked (it inherits the mask in effect when it is created). The work must
// not call PostgreSQL; its result or exception comes back through the future.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <future>
#include <type_traits>
#include <utility>

namespace connector {

template <typename Work>
std::future<std::invoke_result_t<Work>> start_signal_free_task(Work&& work) {
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  struct Restore {
    sigset_t* mask;
    ~Restore() { pthread_sigmask(SIG_SETMASK, mask, nullptr); }
  } restore{&previous};
  return std::async(std::launch::async, std::forward<Work>(work));
}

}  // namespace connector
