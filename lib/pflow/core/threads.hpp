// Worker threads that are joined when their owner leaves scope, during stack unwinding too: a
// std::thread destroyed while joinable calls std::terminate.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace pflow {

struct JoiningThreads {
  std::vector<std::thread> threads;
  JoiningThreads() = default;
  JoiningThreads(const JoiningThreads&) = delete;
  JoiningThreads& operator=(const JoiningThreads&) = delete;
  ~JoiningThreads() {
    for (std::thread& t : threads)
      if (t.joinable()) t.join();
  }
};

// Runs body(k) for k = 0 .. count - 1 on `threads` threads (this one included), each index once,
// taken in increasing order. body returns false to stop taking new indices (an interrupt). The
// first exception a body throws stops the others at their next index and is rethrown here once
// every thread has joined: an exception never leaves a thread.
template <class Body>
void parallel_for_indices(std::size_t count, int threads, Body&& body) {
  std::atomic<std::size_t> next{0};
  std::mutex failure_lock;
  std::exception_ptr failure;
  auto worker = [&] {
    for (std::size_t k = next++; k < count; k = next++) {
      try {
        if (!body(k)) return;
      } catch (...) {
        const std::lock_guard<std::mutex> lock(failure_lock);
        if (!failure) failure = std::current_exception();
        next = count;
        return;
      }
    }
  };
  const std::size_t used = std::max<std::size_t>(
      1, std::min<std::size_t>(static_cast<std::size_t>(std::max(threads, 1)), count));
  {
    JoiningThreads pool;
    for (std::size_t t = 1; t < used; ++t) pool.threads.emplace_back(worker);
    worker();
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace pflow
