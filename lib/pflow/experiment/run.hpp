// Running an experiment: the driver over the kinds of experiment (kinds.hpp), checkpoints and
// resume, the HDF5 result with its provenance (README "Results").
#pragma once

#include <atomic>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "pflow/core/progress.hpp"
#include "pflow/experiment/config.hpp"
#include "pflow/experiment/result.hpp"
#include "pflow/sampler/convergence.hpp"

namespace pflow {

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
  // Spread the work over the ranks of the MPI job (cluster.hpp; `pflow run` under mpirun or
  // srun): every rank calls run_experiment with the same config and options, rank 0 alone holds
  // the finished result and writes the checkpoint. The result is the same as one process's.
  bool distributed = false;
};

// Runs an experiment of any kind (kinds.hpp): the cells (solver x NFE or tolerance) with the
// kind's reference, or the tables of a kind without cells. A run stopped through `options.stop`
// returns with cells_done < cells_total (its finished cells are in the checkpoint).
ExperimentResult run_experiment(const ExperimentConfig& config, const RunOptions& options);

// Writes a complete result atomically (built in memory, one checked write to a temporary file
// beside `path`, then renamed): provenance, then the kind's datasets (README "Results").
void write_result(const ExperimentResult& result, const std::string& path);

// What `pflow run` prints when it is done: the brief report and the table (from the result in
// memory), and what the errors are; a kind without cells says what it wrote.
std::string run_summary(const ExperimentResult& result, double seconds);

// What a run will do and need, before it runs (`pflow run --plan`): its cells, the evaluations
// per particle, an estimate of its peak memory and, from a short calibration, of its time.
struct RunPlan {
  struct Cell {
    std::string solver;
    int nfe = 0;             // fixed-step cells
    double tolerance = NAN;  // adaptive cells (their NFE follows from the tolerance)
  };
  std::vector<Cell> cells;
  long long particles = 0;
  int state_dim = 0;
  long long nfe_per_particle = 0;  // the fixed-step cells' NFE, summed
  // The estimated peak resident memory and its parts (bytes).
  double memory = 0, memory_program = 0, memory_states = 0, memory_file = 0, memory_work = 0,
         memory_data = 0;
  // The calibration's estimate of the wall time on one thread (NaN: not estimated; the note
  // says why) and how it was made.
  double seconds_one_thread = NAN;
  std::string calibration_note;
};
// `calibrate`: also run the calibration (the run cut to its first two NFE levels on 1 and 2
// particles; kinds without cells are run whole).
RunPlan plan_run(const ExperimentConfig& config, int threads, bool calibrate);
std::string format_plan(const ExperimentConfig& config, const RunPlan& plan, int threads);
// Refuses (InputError on init.count, with the numbers) a run whose estimated peak memory
// exceeds this machine's physical memory.
void require_memory_fits(const ExperimentConfig& config, int threads);

// Provenance attributes of every result file.
struct Provenance {
  std::string git_commit, git_dirty, pflow_version, created_utc, host, compiler, libraries;
};
Provenance current_provenance();

}  // namespace pflow
