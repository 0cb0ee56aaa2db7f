// Running an experiment: the cells (solver x NFE) of a convergence study, or the kernel table of
// an SDE, written to one HDF5 file with its provenance (README "Results").
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

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
  std::vector<double> x;  // final states, row-major [n, D]
  bool failed = false;
  std::string failure;
  Trajectory trajectory;  // kind "trajectory" only
};

struct SolverRun {
  std::string label, name, reference;
  int declared_order = 0;
  bool adaptive = false;
  std::vector<CellResult> cells;
  OrderFit fit;
};

struct ExperimentResult {
  ExperimentConfig config;
  int particles = 0;
  std::vector<double> init, reference;  // row-major [n, D]
  std::string reference_method;
  double reference_tolerance = 0;
  std::vector<SolverRun> solvers;
};

struct RunOptions {
  int threads = 1;
  std::function<void(const std::string&)> progress;  // one line per finished cell
};

// Kinds "convergence", "trajectory" (the same, plus every intermediate state and the reference
// at every grid time) and "work-precision" (fixed solvers over `nfe`, adaptive ones over
// `tolerances`).
ExperimentResult run_convergence(const ExperimentConfig& config, const RunOptions& options);

// The summary table of a run: solver, declared and fitted order, error at each NFE.
std::string summary_table(const ExperimentResult& result);

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
