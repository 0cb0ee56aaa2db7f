// Worker threads that are joined when their owner leaves scope, during stack unwinding too: a
// std::thread destroyed while joinable calls std::terminate.
#pragma once

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

}  // namespace pflow
