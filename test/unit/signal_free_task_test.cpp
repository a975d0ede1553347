// Threads started for a second core never take the backend's signals.

#include "signal_free_task.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace connector {
namespace {

bool blocked(int signal) {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, signal) == 1;
}

TEST(SignalFreeTask, TheTaskBlocksEverySignalAndTheCallerKeepsItsMask) {
  ASSERT_FALSE(blocked(SIGINT));
  auto task = start_signal_free_task(
      [] { return blocked(SIGINT) && blocked(SIGTERM) && blocked(SIGUSR1) && blocked(SIGALRM); });
  EXPECT_TRUE(task.get());
  EXPECT_FALSE(blocked(SIGINT));
  EXPECT_FALSE(blocked(SIGUSR1));
}

TEST(SignalFreeTask, AnExceptionComesBackThroughTheFuture) {
  auto task = start_signal_free_task([]() -> int { throw std::runtime_error("from the task"); });
  EXPECT_THROW(task.get(), std::runtime_error);
}

}  // namespace
}  // namespace connector
