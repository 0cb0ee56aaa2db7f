// Experiment kinds (README "Experiments"): each kind is one class in experiment/kinds/, holding
// everything that is particular to it: its config fields and rules, how its reference is made,
// how a cell runs and what it measures, how its orders are fitted, the HDF5 datasets it adds and
// the note its summary prints. The driver (run.cpp) and the config parser (config.cpp) call these
// hooks through the table of kinds (kinds.hpp); a kind overrides only the hooks whose default
// (KindDefaults, below) does not fit. The hooks are templates on the run's number type, so only
// the driver instantiates them.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pflow/core/json_fields.hpp"
#include "pflow/core/progress.hpp"
#include "pflow/experiment/config.hpp"
#include "pflow/experiment/h5.hpp"
#include "pflow/experiment/result.hpp"
#include "pflow/flow/exact_flow.hpp"
#include "pflow/flow/pf_ode.hpp"
#include "pflow/model/denoisers.hpp"
#include "pflow/sampler/convergence.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/target/data_source.hpp"

namespace pflow {

struct MlpModel;  // model/mlp.hpp

// What the driver has set up for a run with cells, in the run's number type.
template <class Scalar>
struct RunSetup {
  RunSetup(const ExperimentConfig& c, const LinearSde<Scalar>& s, const LinearSde<mp50>& s50,
           const GaussianMixture<mp50>* d50)
      : config(c), sde(s), sde50(s50), data50(d50) {}
  const ExperimentConfig& config;
  const LinearSde<Scalar>& sde;
  const LinearSde<mp50>& sde50;         // the same SDE and data in 50 digits, for references
  const GaussianMixture<mp50>* data50;  // null for a sample-only data set (no analytic flow)
  const GaussianMixture<Scalar>* data = nullptr;  // the same in the run's precision
  Problem<Scalar> problem;                        // SDE, the run's model, seed
  // A learned or perturbed model in 50 digits (null for the analytic one): the reference is then
  // its own flow, and the analytic flow of the data measures the total error beside it.
  const Denoiser<mp50>* model50 = nullptr;
  const MlpModel* mlp = nullptr;  // the run's model file, when it has one
  Mat<Scalar> x0;                 // initial states, D x n
  Scalar t_start, t_end;
  bool exact_available = false;  // the data has one component: an exact flow map
  bool exact_reference = false;  // and it serves as the reference
  // The exact map is evaluated in the run's precision (double) from one eigendecomposition
  // (reference "exact-double", or "auto" above exact_in_double_min_dim): no 50-digit copies.
  bool exact_in_run_precision = false;
  const ProgressCallback* progress = nullptr;
  int threads = 1;  // for the particles of the references (bit-identical for any count)
  // Encoding kinds (inversion) flow from t_end to t_start: the references run that way too.
  bool encode = false;
  double flow_from() const { return encode ? config.t_end : config.t_start; }
  double flow_to() const { return encode ? config.t_start : config.t_end; }
};

// One cell: a solver on its grid, against the run's reference (and, for a learned or perturbed
// model, against the analytic flow of the data as well).
template <class Scalar>
struct CellRun {
  const RunSetup<Scalar>& setup;
  const Solver<Scalar>& solver;
  std::vector<Scalar> grid;
  const Mat<Scalar>& reference;
  const Mat<Scalar>* analytic = nullptr;
};

template <class Scalar>
std::vector<double> row_major(const Mat<Scalar>& x) {  // D x n -> [n, D]
  std::vector<double> out(static_cast<size_t>(x.size()));
  for (Eigen::Index j = 0; j < x.cols(); ++j)
    for (Eigen::Index i = 0; i < x.rows(); ++i) out[j * x.rows() + i] = to_double(Scalar(x(i, j)));
  return out;
}

// The largest coordinate error and the root mean square over particles and coordinates.
template <class Scalar, class Derived>  // an expression (x - reference): no temporary
std::pair<double, double> max_and_rms(const Eigen::MatrixBase<Derived>& diff) {
  return {to_double(Scalar(diff.cwiseAbs().maxCoeff())),
          std::sqrt(to_double(Scalar(diff.squaredNorm())) / static_cast<double>(diff.size()))};
}

// Errors of a cell's final states against the reference, in the run's precision (err_max,
// err_rms), and, for a learned or perturbed model, against the analytic flow (err_total_*).
template <class Scalar>
void record_errors(const SolveResult<Scalar>& r, const CellRun<Scalar>& run, CellResult& cell) {
  cell.nfe = r.nfe;
  cell.steps = r.steps;
  cell.wall_s = r.wall_s;
  cell.x = row_major(r.x);
  std::tie(cell.err_max, cell.err_rms) = max_and_rms<Scalar>(r.x - run.reference);
  if (run.analytic)
    std::tie(cell.err_total_max, cell.err_total_rms) = max_and_rms<Scalar>(r.x - *run.analytic);
}

// The number type of a run's Bulirsch-Stoer references (config "reference"; README
// "References"): f128 (34 digits, tolerance 1e-28) for double runs, mp50 (50 digits, tolerance
// 1e-32) for f128 and mp50 runs and wherever the config asks for "mp50". A double run measures
// errors of 1e-16 and more; the f128 reference agrees with the mp50 one to 2.4e-29 on the
// headline problem (tests [reference]), twelve digits below them.
template <class Scalar>
bool reference_in_f128(const ExperimentConfig& c) {
  if (c.reference == "float128") return true;
  if (c.reference == "mp50") return false;
  return std::is_same_v<Scalar, double>;
}

// "Bulirsch-Stoer ... (float128, 34 digits)": the number type named for a reference's method.
template <class R>
std::string reference_digits() {
  return std::is_same_v<R, mp50>
             ? std::string("50 digits")
             : scalar_name<R>() + ", " + to_text(ScalarTraits<R>::digits10 + 1) + " digits";
}

// The Bulirsch-Stoer solve in number type R of the PF-ODE of the run's model (`learned`) or of
// the exact score of its data, from the run's initial states, from t_start to t_end (encoding:
// t_end to t_start), its particles on the run's threads, each reported to `stage`. The SDE, data
// and model are the setup's in mp50 and built from the config in any other type.
template <class R, class Scalar>
Mat<R> bulirsch_stoer_flow(const RunSetup<Scalar>& s, bool learned, ProgressStage& stage) {
  ReferenceStats stats;
  stats.on_particle = [&](Eigen::Index, Eigen::Index) {
    stage.done("particles, " + reference_digits<R>());
  };
  stats.threads = s.threads;
  auto solve = [&](const LinearSde<R>& sde, const Denoiser<R>& model) {
    return reference_flow<R>(sde, model, s.x0.template cast<R>(), from_double<R>(s.flow_from()),
                             from_double<R>(s.flow_to()), reference_tolerance<R>(), &stats);
  };
  if constexpr (std::is_same_v<R, mp50>) {
    if (learned) return solve(s.sde50, *s.model50);
    return solve(s.sde50, AnalyticDenoiser<mp50>(s.sde50, *s.data50));
  } else {
    const ExperimentConfig& c = s.config;
    const auto sde = make_sde<R>(c.sde, c.data_dim, "sde");
    const auto data = DataSource<R>::from_config(c.target, "target");
    if (learned) return solve(*sde, *make_denoiser<R>(c.denoiser, *sde, data.mixture(), s.mlp));
    return solve(*sde, AnalyticDenoiser<R>(*sde, *data.mixture()));
  }
}

// The same in the run's reference type (reference_in_f128), rounded to the run's precision;
// `method` and `tolerance` describe it.
template <class Scalar>
Mat<Scalar> bulirsch_stoer_reference(const RunSetup<Scalar>& s, bool learned, ProgressStage& stage,
                                     std::string& method, double& tolerance) {
  const std::string what =
      learned ? "Bulirsch-Stoer solve of the model's own PF-ODE (" + s.model50->name() + ", "
              : "Bulirsch-Stoer PF-ODE solve (";
  if (reference_in_f128<Scalar>(s.config)) {
    method = what + reference_digits<f128>() + ")";
    tolerance = to_double(reference_tolerance<f128>());
    return bulirsch_stoer_flow<f128>(s, learned, stage).template cast<Scalar>();
  }
  method = what + reference_digits<mp50>() + ")";
  tolerance = to_double(reference_tolerance<mp50>());
  return bulirsch_stoer_flow<mp50>(s, learned, stage).template cast<Scalar>();
}

// Whether the analytic flow of the run's data is its exact map (one-component data, and the config
// does not ask for a Bulirsch-Stoer solve) rather than a Bulirsch-Stoer solve.
template <class Scalar>
bool exact_map_serves(const RunSetup<Scalar>& s) {
  return s.exact_available && (s.config.reference == "auto" || s.config.reference == "exact" ||
                               s.config.reference == "exact-double");
}

// Refuses a run whose data has no analytic flow, or no exact map where the config asks for one.
template <class Scalar>
void require_analytic_flow(const RunSetup<Scalar>& s) {
  require(s.data != nullptr, "target", s.config.target.dump(),
          "is a sample-only data set: it has no analytic flow");
  require(
      (s.config.reference != "exact" && s.config.reference != "exact-double") || s.exact_available,
      "reference", s.config.reference,
      "needs Gaussian or Dirac data (one component); use \"auto\", \"float128\" or "
      "\"mp50\"");
}

// The analytic flow of the data from the run's initial states: the exact map in 50 digits where
// the data has one component (and the config does not ask for a Bulirsch-Stoer solve), else the
// Bulirsch-Stoer solve of the PF-ODE with the exact score. `method` and `tolerance` describe it.
template <class Scalar>
Mat<Scalar> analytic_flow(const RunSetup<Scalar>& s, std::string& method, double& tolerance) {
  require_analytic_flow(s);
  static const ProgressCallback none;
  ProgressStage stage(s.progress ? *s.progress : none, s.model50 ? "analytic flow" : "reference",
                      static_cast<size_t>(s.x0.cols()));
  if (!exact_map_serves(s)) return bulirsch_stoer_reference(s, false, stage, method, tolerance);
  // In chunks of particles on the run's threads: a 50-digit number takes 64 bytes, so the whole
  // state in 50 digits would take 8 times the run's own states (N = 1e6, d = 2: 128 MB per
  // copy). Each particle's map is independent, so the result is the same for any chunking.
  const Eigen::Index n = s.x0.cols(), chunk = 4096;
  Mat<Scalar> ref(s.x0.rows(), n);
  auto chunked = [&](const auto& sde, const auto& data, auto from, auto to) {
    using R = decltype(from);
    parallel_for_indices(static_cast<size_t>((n + chunk - 1) / chunk), s.threads, [&](size_t k) {
      const Eigen::Index first = static_cast<Eigen::Index>(k) * chunk;
      const Eigen::Index cols = std::min(chunk, n - first);
      const Mat<R> x = s.x0.middleCols(first, cols).template cast<R>();
      ref.middleCols(first, cols) = exact_flow_map(sde, data, x, from, to).template cast<Scalar>();
      return true;
    });
  };
  if (s.exact_in_run_precision) {
    // The per-mode closed form from the spectrum of the covariance (docs/NOTES.md sec. 2),
    // computed once (LAPACK from d = 64): its error is that of a backward-stable
    // eigendecomposition, ~1e-13 relative at d = 64 against the 50-digit map (tests).
    chunked(s.sde, *s.data, from_double<Scalar>(s.flow_from()), from_double<Scalar>(s.flow_to()));
    stage.done("exact flow map", static_cast<size_t>(n));
    const LowRankPlusDiagonal* low_rank = s.data->low_rank(0);
    method = "exact flow map (" + std::string(scalar_name<Scalar>()) + ", per-mode closed form " +
             (low_rank && low_rank->scaled_identity
                  ? "of c I plus rank " + std::to_string(low_rank->rank()) + ", O(d r))"
                  : std::string("from one eigendecomposition)"));
  } else {
    chunked(s.sde50, *s.data50, from_double<mp50>(s.flow_from()), from_double<mp50>(s.flow_to()));
    stage.done("exact flow map", static_cast<size_t>(n));
    method = "exact flow map (50 digits)";
  }
  tolerance = 0;
  return ref;
}

// The flow of the run's own (learned or perturbed) model: the PF-ODE with the model's score, the
// network evaluated in the reference type, solved by Bulirsch-Stoer.
template <class Scalar>
Mat<Scalar> model_flow(const RunSetup<Scalar>& s, std::string& method, double& tolerance) {
  static const ProgressCallback none;
  ProgressStage stage(s.progress ? *s.progress : none, "reference (model flow)",
                      static_cast<size_t>(s.x0.cols()));
  return bulirsch_stoer_reference(s, true, stage, method, tolerance);
}

// "tolerances" (kinds that run adaptive solvers): required when a solver is adaptive,
// decreasing, each in (0, 1).
inline void parse_tolerances(const Fields& f, ExperimentConfig& c,
                             const std::vector<SolverInfo>& infos) {
  const bool any_adaptive =
      std::any_of(infos.begin(), infos.end(), [](const SolverInfo& i) { return i.adaptive; });
  if (!any_adaptive) return;
  require(f.has("tolerances"), "tolerances", "(missing)", "is required for adaptive solvers");
  const Vec<double> tols = f.vector<double>("tolerances");
  for (Eigen::Index i = 0; i < tols.size(); ++i) {
    const std::string path = "tolerances[" + std::to_string(i) + "]";
    require(tols(i) > 0 && tols(i) < 1, path, tols(i), "must be in (0, 1)");
    require(i == 0 || tols(i) < tols(i - 1), path, tols(i), "tolerances must decrease");
    c.tolerances.push_back(tols(i));
  }
}

// A fitted order over a solver's NFE ladder from one error per cell (NaN for failed cells).
inline OrderFit fit_ladder(const SolverRun& run, double floor, int fit_levels,
                           double CellResult::*error) {
  std::vector<Level> levels;
  for (const CellResult& cell : run.cells) {
    Level l;
    l.steps = static_cast<int>(cell.nfe);
    l.nfe = cell.nfe;
    l.err_max = cell.*error;
    l.failed = cell.failed;
    levels.push_back(l);
  }
  return fit_order(levels, floor, fit_levels);
}

// How `pflow table` lays out a kind's result: a row per solver and a column per NFE, two rows
// per solver (strong and weak errors), a row per cell (work-precision: NFE and tolerance), or a
// row per solver of sample distances with their floor (kind "sample"), or a row per solver, NFE
// and guidance scale (kind "guidance").
enum class TableLayout { per_solver, strong_and_weak, per_cell, samples, guidance };

struct KindDefaults {
  static constexpr bool has_cells = true;         // kernel: a table, no solver cells
  static constexpr bool allows_adaptive = false;  // adaptive solvers need tolerance cells
  // A learned or perturbed model's cells are also measured against the analytic flow.
  static constexpr bool splits_model_error = true;
  // init.count draws samples of p_{t_start} (where the sampler starts), or of p_{t_end}.
  static constexpr bool init_at_t_end = false;
  static constexpr TableLayout table_layout = TableLayout::per_solver;
  // The error a solver's order is fitted to and the brief report quotes.
  static constexpr double CellResult::*primary_error = &CellResult::err_max;
  // What the brief report calls the smallest primary error of a solver.
  static constexpr const char* primary_label = "smallest error";
  // Top-level config fields only this kind accepts (others refuse them).
  static std::vector<std::string> own_fields() { return {}; }

  // The kind's own config fields and rules, after the common ones are parsed (config.cpp).
  void validate(const Fields&, ExperimentConfig&, const std::vector<SolverInfo>&) const {}
  // Adds the kind's fields to the normalised config.
  void normalise(const ExperimentConfig&, nlohmann::json&) const {}
  // Adjusts the problem every cell solves.
  template <class Scalar>
  void configure(RunSetup<Scalar>&) const {}

  // The reference final states in 50 digits: the analytic flow of the data (analytic_flow), or
  // the flow of a learned or perturbed model (model_flow).
  template <class Scalar>
  Mat<Scalar> reference(const RunSetup<Scalar>& s, ExperimentResult& result) const {
    if (s.model50) return model_flow(s, result.reference_method, result.reference_tolerance);
    return analytic_flow(s, result.reference_method, result.reference_tolerance);
  }

  // Runs one cell: the solve and its errors.
  template <class Scalar>
  void run_cell(const CellRun<Scalar>& run, CellResult& cell) const {
    record_errors(solve(run.solver, run.setup.problem, run.grid, run.setup.x0), run, cell);
  }

  // Fits each fixed-step solver's order over its ladder (adaptive ones have none: NaN).
  void finish(ExperimentResult& r, double floor) const {
    for (SolverRun& run : r.solvers)
      if (!run.adaptive) run.fit = fit_ladder(run, floor, r.config.fit_levels, primary_error);
  }

  // The /reference group: the reference final states, how they were made and, for a learned or
  // perturbed model, the analytic flow and the model error.
  void write_reference(h5::File& f, const ExperimentResult& r) const {
    const size_t n = static_cast<size_t>(r.particles), d = static_cast<size_t>(r.config.state_dim);
    f.group("/reference");
    f.dataset("/reference/x", {n, d}, r.reference);
    f.attribute("/reference", "method", r.reference_method);
    f.attribute("/reference", "tolerance", r.reference_tolerance);
    if (!r.analytic_flow.empty()) {
      f.dataset("/reference/analytic_flow", {n, d}, r.analytic_flow);
      f.attribute("/reference", "analytic_method", r.analytic_method);
      f.attribute("/reference", "model_error_max", r.model_error_max);
      f.attribute("/reference", "model_error_rms", r.model_error_rms);
    }
  }

  // Datasets and attributes the kind adds to a solver's group.
  void write_solver(h5::File&, const std::string&, const SolverRun&,
                    const ExperimentResult&) const {}

  // What the summary's errors are.
  std::string error_note() const {
    return "max over particles and coordinates of |x - x_ref| at t_end";
  }
};

// Whether a kind keeps the default reference (it does not declare its own `reference`): the flow
// of each particle on its own, which the driver splits into chunks of particles over threads and
// ranks (run.cpp run_particle_stage). A kind with its own reference has it computed whole.
template <class Kind>
constexpr bool reference_by_particle =
    std::is_same_v<decltype(&Kind::template reference<double>),
                   decltype(&KindDefaults::template reference<double>)>;

}  // namespace pflow
