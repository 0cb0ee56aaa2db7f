// `pflow orders`: measured convergence orders of the solvers on the standard problems.
#pragma once

#include <string>
#include <vector>

#include "pflow/core/progress.hpp"

namespace pflow_app {

struct OrdersOptions {
  std::vector<std::string> problems = {"gaussian", "mixture"};
  std::vector<std::string> solvers;  // JSON specs or names; empty = the standard list
  std::string precision = "double";
  std::vector<int> steps = {8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
  std::string start;    // overrides the start of the standard multistep solvers
  bool encode = false;  // data -> noise on the reversed grid (inversion)
  bool details = false;
  pflow::ProgressCallback progress;  // after each solver on each problem
};

int run_orders(const OrdersOptions& options);

}  // namespace pflow_app
