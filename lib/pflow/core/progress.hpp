// Progress of a long step (experiment cells, the reference solve, verify cases, order levels),
// reported to a callback that the command-line program prints on stderr when it is a terminal.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>

namespace pflow {

struct ProgressEvent {
  std::string stage;  // "cells", "reference", "verify", "orders"
  size_t done = 0, total = 0;
  double elapsed_s = 0;  // since the stage began
  std::string item;      // what just finished
};
using ProgressCallback = std::function<void(const ProgressEvent&)>;

// "cells 12/72  ddim nfe 24  3.1 s, ETA 15 s" (the ETA extrapolates the mean time per item).
inline std::string format_progress(const ProgressEvent& e) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s %zu/%zu", e.stage.c_str(), e.done, e.total);
  std::string out = buf;
  if (!e.item.empty()) out += "  " + e.item;
  std::snprintf(buf, sizeof buf, "  %.1f s", e.elapsed_s);
  out += buf;
  if (e.done > 0 && e.done < e.total) {
    const double eta =
        e.elapsed_s / static_cast<double>(e.done) * static_cast<double>(e.total - e.done);
    std::snprintf(buf, sizeof buf, ", ETA %.0f s", eta);
    out += buf;
  }
  return out;
}

// Reports the items of one stage: call done(item) as each finishes.
class ProgressStage {
 public:
  ProgressStage(const ProgressCallback& callback, std::string stage, size_t total)
      : callback_(callback),
        stage_(std::move(stage)),
        total_(total),
        start_(std::chrono::steady_clock::now()) {}
  void done(const std::string& item, size_t count = 1) {
    done_ += count;
    if (!callback_) return;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    callback_({stage_, done_, total_, elapsed, item});
  }

 private:
  const ProgressCallback& callback_;
  std::string stage_;
  size_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace pflow
