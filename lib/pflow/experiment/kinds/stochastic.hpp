// Kind "stochastic": stochastic samplers (ddpm, ddim with 0 < eta <= 1, euler-maruyama) on one
// shared Brownian path. The run's solvers share one eta (ddpm's is 1), which picks the reverse SDE
// they discretise (docs/NOTES.md sec. 16); the reference is Euler-Maruyama on that SDE on every
// interval of the path. The strong error is the mean-square one (err_rms over paths and
// coordinates), the weak error the largest error of the particles' mean and covariance
// (err_weak), each with its fitted order. Where the data are a mixture, the particles' moments
// are also compared with the exact moments of p_{t_end} (err_weak_exact, with the Monte-Carlo
// standard error of the moments; its order is fitted over the cells above three of them).
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
    for (size_t i = 0; i < infos.size(); ++i) check_solver(infos[i], i);
    // One reference SDE per run: the solvers' eta must agree (docs/NOTES.md sec. 16).
    for (size_t i = 1; i < infos.size(); ++i)
      require(solver_eta(c.solvers[i]) == solver_eta(c.solvers[0]),
              "solvers[" + std::to_string(i) + "].eta", to_text(solver_eta(c.solvers[i])),
              "differs from solvers[0]'s eta " + to_text(solver_eta(c.solvers[0])) +
                  ": kind \"stochastic\" compares the solvers of one run on one reverse SDE "
                  "(ddpm has eta = 1)");
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
    const double eta = solver_eta(s.config.solvers.at(0));
    const auto em = make_solver<Scalar>(nlohmann::json{{"name", "euler-maruyama"}, {"eta", eta}});
    const int intervals = 1 << s.config.brownian_levels;
    const auto grid = make_time_grid<Scalar>(s.sde, s.config.grid, s.t_start, s.t_end, intervals);
    result.reference_method = "euler-maruyama (eta = " + to_text(eta) + ") on all 2^" +
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
    // Only where the particles started as samples of p_t_start and the model aims at the data:
    // otherwise p_t_end's moments are not what the sampler approximates.
    if (run.setup.data && run.setup.config.init_points.empty() &&
        run.setup.problem.model->approximates_data()) {
      const DataMoments<double> exact =
          marginal_moments(run.setup.sde, *run.setup.data, run.setup.t_end);
      const auto [error, standard_error] = exact_weak_error(r.x, exact);
      cell.series["weak_exact"] = {error, standard_error};
    }
  }

  // Strong errors are mean-square (err_rms over the paths); weak ones are err_weak.
  void finish(ExperimentResult& r, double floor) const {
    for (SolverRun& run : r.solvers) {
      run.fit = fit_ladder(run, floor, r.config.fit_levels, primary_error);
      run.weak_fit = fit_ladder(run, floor, r.config.fit_levels, &CellResult::err_weak);
      run.weak_exact_fit = exact_weak_fit(run, r.config.fit_levels);
    }
  }

  // Whether any cell of the run was measured against the exact moments.
  static bool has_exact(const SolverRun& run) {
    return std::any_of(run.cells.begin(), run.cells.end(),
                       [](const CellResult& c) { return c.series.count("weak_exact") > 0; });
  }

  // Against the exact moments of p_{t_end}: the fit uses the cells whose error is above three
  // Monte-Carlo standard errors (below that the sampling noise, not the step, sets the error).
  static OrderFit exact_weak_fit(const SolverRun& run, int fit_levels) {
    std::vector<Level> levels;
    double noise = 0;
    if (!has_exact(run)) return {};
    for (const CellResult& cell : run.cells) {
      const auto it = cell.series.find("weak_exact");
      const bool measured = it != cell.series.end() && it->second.size() == 2;
      Level l;
      l.steps = static_cast<int>(cell.nfe);
      l.nfe = cell.nfe;
      l.err_max = measured ? it->second[0] : std::nan("");
      l.failed = cell.failed || !measured;
      if (measured) noise = std::max(noise, it->second[1]);
      levels.push_back(l);
    }
    return fit_order(levels, 3 * noise, fit_levels);
  }

  void write_solver(h5::File& f, const std::string& g, const SolverRun& s,
                    const ExperimentResult&) const {
    std::vector<double> weak;
    for (const CellResult& cell : s.cells) weak.push_back(cell.err_weak);
    f.dataset(g + "/err_weak", {weak.size()}, weak);
    f.attribute(g, "declared_weak_order", static_cast<double>(s.declared_weak_order));
    f.attribute(g, "fitted_weak_order", s.weak_fit.order);
    f.attribute(g, "weak_pairwise_orders", s.weak_fit.pairwise);
    if (!has_exact(s)) return;
    std::vector<double> exact, standard_error;  // NaN for a failed cell
    for (const CellResult& cell : s.cells) {
      const auto it = cell.series.find("weak_exact");
      const bool measured = it != cell.series.end() && it->second.size() == 2;
      exact.push_back(measured ? it->second[0] : std::nan(""));
      standard_error.push_back(measured ? it->second[1] : std::nan(""));
    }
    f.dataset(g + "/err_weak_exact", {exact.size()}, exact);
    f.dataset(g + "/weak_exact_standard_error", {standard_error.size()}, standard_error);
    f.attribute(g, "fitted_weak_order_exact", s.weak_exact_fit.order);
    f.attribute(g, "weak_exact_pairwise_orders", s.weak_exact_fit.pairwise);
  }

  std::string error_note() const {
    return "strong = RMS over paths and coordinates of |x - x_ref|, weak = max |mean - mean_ref|, "
           "|cov - cov_ref| at t_end, on one Brownian path; weak vs p = the same against the exact "
           "moments of p_{t_end} (fitted above 3 Monte-Carlo standard errors)";
  }

 private:
  static void check_solver(const SolverInfo& info, size_t i) {
    const std::string path = "solvers[" + std::to_string(i) + "]";
    require(info.stochastic, path, info.label,
            "is deterministic: kind \"stochastic\" measures stochastic samplers (ddpm, ddim with "
            "eta > 0, euler-maruyama)");
  }

  // The eta of a stochastic solver's spec: ddim's and euler-maruyama's parameter, 1 for ddpm and
  // for euler-maruyama without one.
  static double solver_eta(const nlohmann::json& spec) {
    if (spec.is_object() && spec.contains("eta") && spec["eta"].is_number())
      return spec["eta"].get<double>();
    return 1.0;
  }

  // The mixture's exact mean and covariance at t (ambient basis): Psi(t, 0) m_k and
  // Psi C_k Psi^T + Sigma(t) per component, combined as in DataMoments.
  template <class Scalar>
  static DataMoments<double> marginal_moments(const LinearSde<Scalar>& sde,
                                              const GaussianMixture<Scalar>& data,
                                              const Scalar& t) {
    const BlockMatrix<Scalar> psi = sde.transition(t, Scalar(0)), sigma = sde.covariance(t);
    const Mat<Scalar> means = sde.lift_data(data.means());
    const int d = sde.state_dim();
    Vec<Scalar> mean = Vec<Scalar>::Zero(d);
    Mat<Scalar> second = Mat<Scalar>::Zero(d, d);
    for (int k = 0; k < data.components(); ++k) {
      const Vec<Scalar> m = sde.from_spectral(Mat<Scalar>(psi.apply(means.col(k))));
      const Mat<Scalar> c_spectral = sde.marginal_covariance(data.cov(k), psi, sigma).to_dense();
      const Mat<Scalar> c =
          sde.from_spectral(Mat<Scalar>(sde.from_spectral(c_spectral).transpose()));
      mean += data.weights()(k) * m;
      second += data.weights()(k) * (c + m * m.transpose());
    }
    DataMoments<double> out;
    out.mean = mean.unaryExpr([](const Scalar& v) { return to_double(v); });
    out.cov = Mat<Scalar>(second - mean * mean.transpose()).unaryExpr([](const Scalar& v) {
      return to_double(v);
    });
    return out;
  }

  // The largest error of the particles' mean and covariance against exact moments, and the
  // largest Monte-Carlo standard error of those estimates: sd(x_i) / sqrt(n) for the mean,
  // sd((x_i - m_i)(x_j - m_j)) / sqrt(n) for the covariance.
  template <class Scalar>
  static std::pair<double, double> exact_weak_error(const Mat<Scalar>& x,
                                                    const DataMoments<double>& exact) {
    const Mat<double> xd = x.unaryExpr([](const Scalar& v) { return to_double(v); });
    const double n = static_cast<double>(xd.cols());
    const Vec<double> mean = xd.rowwise().mean();
    const Mat<double> centred = xd.colwise() - mean;
    const Mat<double> cov = centred * centred.transpose() / n;
    double error = std::max((mean - exact.mean).cwiseAbs().maxCoeff(),
                            (cov - exact.cov).cwiseAbs().maxCoeff());
    double standard_error = 0;
    for (Eigen::Index i = 0; i < xd.rows(); ++i) {
      standard_error = std::max(standard_error, std::sqrt(cov(i, i) / n));
      for (Eigen::Index j = 0; j <= i; ++j) {
        const Vec<double> products = centred.row(i).cwiseProduct(centred.row(j)).transpose();
        const double spread = (products.array() - cov(i, j)).square().mean();
        standard_error = std::max(standard_error, std::sqrt(spread / n));
      }
    }
    return {error, standard_error};
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
