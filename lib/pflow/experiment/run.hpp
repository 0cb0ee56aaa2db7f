// Running an experiment: the cells (solver x NFE) of a convergence study, or the kernel table of
// an SDE, written to one HDF5 file with its provenance (README "Results").
#pragma once

#include <atomic>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "pflow/core/progress.hpp"
#include "pflow/experiment/config.hpp"
#include "pflow/sampler/convergence.hpp"

namespace pflow {

// A trajectory (kind "trajectory"): the grid, the solver's states and the reference states at
// every grid time, row-major [steps + 1, n, D].
struct Trajectory {
  std::vector<double> t, x, reference;
};

struct CellResult {
  int nfe_target = 0;               // fixed-step solvers: the NFE budget
  double tolerance = std::nan("");  // adaptive solvers: the tolerance
  long nfe = 0;
  int steps = 0;
  double err_max = 0, err_rms = 0, wall_s = 0;
  double err_weak = std::nan("");  // kind "stochastic": max |moment - reference moment|
  std::vector<double> x;           // final states, row-major [n, D]
  bool failed = false;
  std::string failure;
  Trajectory trajectory;  // kind "trajectory" only
};

struct SolverRun {
  std::string label, name, reference;
  int declared_order = 0;  // strong order for kind "stochastic"
  int declared_weak_order = 0;
  bool adaptive = false;
  std::vector<CellResult> cells;
  OrderFit fit;       // over err_max (err_rms, the mean-square strong error, when stochastic)
  OrderFit weak_fit;  // kind "stochastic": over err_weak
};

struct ExperimentResult {
  ExperimentConfig config;
  int particles = 0;
  std::vector<double> init, reference;  // row-major [n, D]
  std::string reference_method;
  double reference_tolerance = 0;
  std::vector<SolverRun> solvers;
  size_t cells_total = 0, cells_done = 0;  // cells_done < cells_total: the run was stopped
};

struct RunOptions {
  int threads = 1;
  // Progress of the reference solve (particles) and of the cells (with ETA).
  ProgressCallback progress;
  // Checkpointing: each finished cell is written to this directory (one small file per cell,
  // written atomically); with `resume`, cells found there are loaded instead of run.
  std::string checkpoint_dir;
  bool resume = false;
  // Set (e.g. by a signal handler) to stop at the next cell boundary: running cells finish and
  // are checkpointed, no new one starts.
  const std::atomic<bool>* stop = nullptr;
};

// Kinds "convergence", "trajectory" (the same, plus every intermediate state and the reference
// at every grid time), "work-precision" (fixed solvers over `nfe`, adaptive ones over
// `tolerances`) and "stochastic" (strong and weak errors against Euler-Maruyama on every
// interval of the shared Brownian path).
ExperimentResult run_convergence(const ExperimentConfig& config, const RunOptions& options);

// Writes the result atomically: a temporary file beside `path`, flushed, then renamed.
void write_result(const ExperimentResult& result, const std::string& path);
// The kernel table of an SDE (kind "kernel") written directly.
void run_kernel(const ExperimentConfig& config, const std::string& path);

// Provenance attributes of every result file.
struct Provenance {
  std::string git_commit, git_dirty, pflow_version, created_utc, host, compiler, libraries;
};
Provenance current_provenance();

}  // namespace pflow
