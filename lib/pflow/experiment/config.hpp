// Experiment configs (JSON): parsed and validated completely before any work starts, with the
// defaults filled in (the result file stores that normalised config). README "Experiments"
// documents the schema; errors name the JSON path and the value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pflow/sampler/time_grid.hpp"

namespace pflow {

struct ExperimentConfig {
  std::string name;
  std::string kind;  // experiment_kinds()
  nlohmann::json sde, target, denoiser;
  double t_start = 1, t_end = 1e-3;
  GridSpec grid;
  std::vector<std::vector<double>> init_points;  // explicit points (state dimension each)
  int init_count = 0;                            // or this many samples of p_{t_start}
  std::uint64_t init_seed = 0;
  std::vector<nlohmann::json> solvers;
  std::vector<int> nfe;              // fixed-step solvers
  std::vector<double> tolerances;    // adaptive solvers (work-precision)
  std::string precision = "double";  // double | float128 | mp50
  std::string reference = "auto";    // auto | exact | exact-double | float128 | mp50
  std::uint64_t seed = 0;
  int fit_levels = 4;      // the fitted order: least squares over this many trailing levels
  int timing_repeats = 1;  // each cell's solve runs this often; wall_s is the best time
  // Whether a result keeps each cell's final states (/solvers/S/x); off, it keeps their errors
  // only (at d = 3072, 64 particles, the states of 14 cells are 22 MB).
  bool store_states = true;
  int brownian_levels = 0;    // stochastic: the shared Brownian path has 2^levels intervals
  std::vector<double> times;  // kernel: the times to tabulate
  int projections = 0;        // sample: directions of the sliced Wasserstein distance
  int replicates = 0;         // sample: fresh data samples per distance
  std::string prior;          // likelihood: log p_T, "exact" (mixture marginal) or "gaussian"
  // likelihood: {"type": "exact"} or {"type": "hutchinson", "probes": "rademacher" | "gaussian",
  // "count": N, "seed": S}
  nlohmann::json divergence;
  // interpolation: {"method": "slerp" | "linear", "count": N, "endpoints": "data" | "latent"}
  nlohmann::json interpolation;
  // guidance: {"label": y, "scales": [w...], "method": "cfg" | "classifier", "grid": cells}
  nlohmann::json guidance;
  // elbo: {"T": [chain lengths], "samples": Monte-Carlo pairs per term, "seed": s}
  nlohmann::json elbo;
  int data_dim = 0, state_dim = 0;
  bool scalar_sde = false;    // the SDE has scalar coefficients (alpha, sigma)
  nlohmann::json normalized;  // the config as run, defaults filled in
  std::string directory;      // of the config file: relative model paths start here
};

// Gaussian data's exact flow map is evaluated in the run's precision (double) from one
// eigendecomposition, not in 50 digits: under reference "exact-double" (scalar SDEs), and under
// "auto" in a double run of kind convergence or work-precision under a scalar SDE from this
// dimension (a 50-digit
// eigendecomposition costs ~d^3 50-digit operations: seconds at d = 128, hours at d = 3072).
inline constexpr int exact_in_double_min_dim = 128;
bool exact_reference_in_run_precision(const ExperimentConfig& c);

// A path from the config (denoiser.path), resolved against the config file's directory.
std::string config_relative_path(const ExperimentConfig& c, const std::string& path);

// The names of the experiment kinds (the table in kinds.hpp).
const std::vector<std::string>& experiment_kinds();

ExperimentConfig parse_experiment(const nlohmann::json& config);

class Fields;
// A class label of a labelled gmm target (its "labels"), from the field `key` of `fields`:
// errors name that field.
int parse_class_label(const Fields& fields, const std::string& key, const nlohmann::json& target);
// Parses config text (JSON nested at most max_json_depth levels); `source` names it in errors.
ExperimentConfig parse_experiment_text(const std::string& text, const std::string& source);
// Reads and parses a file; a missing file or invalid JSON is an InputError naming it.
ExperimentConfig load_experiment(const std::string& path);

}  // namespace pflow
