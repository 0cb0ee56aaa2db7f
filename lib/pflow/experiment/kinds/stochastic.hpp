// Kind "stochastic": stochastic samplers (ddpm, ddim with eta = 1, euler-maruyama) on one shared
// Brownian path. The reference is Euler-Maruyama on every interval of the path; the strong error
// is the mean-square one (err_rms over paths and coordinates), the weak error the largest error
// of the particles' mean and covariance (err_weak), each with its fitted order.
#pragma once

#include "pflow/experiment/kind_base.hpp"

namespace pflow {

struct StochasticKind : KindDefaults {
  static constexpr TableLayout table_layout = TableLayout::strong_and_weak;
  static constexpr const char* name = "stochastic";
  static constexpr double CellResult::*primary_error = &CellResult::err_rms;  // mean-square
  // The reference is a fine solve of the reverse SDE with the run's model: no analytic flow.
  static constexpr bool splits_model_error = false;
  static std::vector<std::string> own_fields() { return {"brownian_levels"}; }

  void validate(const Fields& f, ExperimentConfig& c, const std::vector<SolverInfo>& infos) const {
    for (size_t i = 0; i < infos.size(); ++i) check_solver(c.solvers[i], infos[i], i);
    // Strong errors need every solve on one Brownian path: the steps of each grid must lie on
    // the path's dyadic grid, and the reference must be much finer than the finest level.
    require(c.grid.kind == "time-uniform", "time.grid", c.grid.kind,
            "must be \"time-uniform\" for kind \"stochastic\" (steps on the Brownian path's "
            "dyadic grid)");
    int finest = 0;
    for (size_t i = 0; i < c.nfe.size(); ++i) {
      const int n = c.nfe[i];
      require((n & (n - 1)) == 0, "nfe[" + std::to_string(i) + "]", n,
              "must be a power of two for kind \"stochastic\" (steps on the dyadic grid)");
      while ((1 << finest) < n) ++finest;
    }
    c.brownian_levels = f.has("brownian_levels") ? f.integer("brownian_levels") : finest + 4;
    require(c.brownian_levels >= finest + 3 && c.brownian_levels <= 20, "brownian_levels",
            c.brownian_levels,
            "must be between log2(max nfe) + 3 = " + std::to_string(finest + 3) +
                " (a reference 8 times finer than the finest level) and 20");
    const double particles =
        c.init_count > 0 ? c.init_count : static_cast<double>(c.init_points.size());
    const double bytes = std::ldexp(1.0, c.brownian_levels) * c.state_dim * particles * 8;
    require(bytes <= 2e9, "brownian_levels", c.brownian_levels,
            "makes a Brownian path of " + to_text(bytes / 1e9) +
                " GB for these particles (at most 2 GB): lower it or init.count");
  }

  void normalise(const ExperimentConfig& c, nlohmann::json& n) const {
    n["brownian_levels"] = c.brownian_levels;
  }

  template <class Scalar>
  void configure(RunSetup<Scalar>& s) const {
    s.problem.brownian_levels = s.config.brownian_levels;
  }

  template <class Scalar>
  Mat<Scalar> reference(const RunSetup<Scalar>& s, ExperimentResult& result) const {
    const auto em = make_solver<Scalar>(nlohmann::json("euler-maruyama"));
    const int intervals = 1 << s.config.brownian_levels;
    const auto grid = make_time_grid<Scalar>(s.sde, s.config.grid, s.t_start, s.t_end, intervals);
    result.reference_method = "euler-maruyama on all 2^" +
                              std::to_string(s.config.brownian_levels) +
                              " intervals of the shared Brownian path";
    result.reference_tolerance = 0;
    return solve(*em, s.problem, grid, s.x0).x;
  }

  template <class Scalar>
  void run_cell(const CellRun<Scalar>& run, CellResult& cell) const {
    const SolveResult<Scalar> r = solve(run.solver, run.setup.problem, run.grid, run.setup.x0);
    record_errors(r, run, cell);
    cell.err_weak = weak_error(r.x, run.reference);
  }

  // Strong errors are mean-square (err_rms over the paths); weak ones are err_weak.
  void finish(ExperimentResult& r, double floor) const {
    for (SolverRun& run : r.solvers) {
      run.fit = fit_ladder(run, floor, r.config.fit_levels, primary_error);
      run.weak_fit = fit_ladder(run, floor, r.config.fit_levels, &CellResult::err_weak);
    }
  }

  void write_solver(h5::File& f, const std::string& g, const SolverRun& s,
                    const ExperimentResult&) const {
    std::vector<double> weak;
    for (const CellResult& cell : s.cells) weak.push_back(cell.err_weak);
    f.dataset(g + "/err_weak", {weak.size()}, weak);
    f.attribute(g, "declared_weak_order", static_cast<double>(s.declared_weak_order));
    f.attribute(g, "fitted_weak_order", s.weak_fit.order);
    f.attribute(g, "weak_pairwise_orders", s.weak_fit.pairwise);
  }

  std::string error_note() const {
    return "strong = RMS over paths and coordinates of |x - x_ref|, weak = max |mean - mean_ref|, "
           "|cov - cov_ref| at t_end, on one Brownian path";
  }

 private:
  static void check_solver(const nlohmann::json& spec, const SolverInfo& info, size_t i) {
    const std::string path = "solvers[" + std::to_string(i) + "]";
    require(info.stochastic, path, info.label,
            "is deterministic: kind \"stochastic\" measures stochastic samplers (ddpm, ddim with "
            "eta > 0, euler-maruyama)");
    // The reference is the reverse SDE (eta = 1); ddim with 0 < eta < 1 discretizes another SDE
    // with the same marginals, so its pathwise error would not converge.
    if (spec.is_object() && spec.contains("eta"))
      require(spec["eta"] == 1.0, path + ".eta", spec["eta"].dump(),
              "must be 1 for kind \"stochastic\" (the reference solves the reverse SDE, eta = 1)");
  }

  // Moments of the particles (columns): the largest error of the mean and the covariance.
  template <class Scalar>
  static double weak_error(const Mat<Scalar>& x, const Mat<Scalar>& reference) {
    auto moments = [](const Mat<Scalar>& m) {
      const Vec<Scalar> mean = m.rowwise().mean();
      const Mat<Scalar> centred = m.colwise() - mean;
      const Mat<Scalar> cov = centred * centred.transpose() / Scalar(m.cols());
      return std::make_pair(mean, cov);
    };
    const auto [mx, cx] = moments(x);
    const auto [mr, cr] = moments(reference);
    return std::max(to_double(Scalar((mx - mr).cwiseAbs().maxCoeff())),
                    to_double(Scalar((cx - cr).cwiseAbs().maxCoeff())));
  }
};

}  // namespace pflow
