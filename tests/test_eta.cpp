// The eta family of DDIM (docs/NOTES.md sec. 16): sigma_t(eta) at eta = 1 against the posterior
// q(x_t | x_s, x_0) by Gaussian conditioning on every scalar schedule; every eta step keeps
// q(x_t | x_0), so for Gaussian data it keeps q(x_t) (mean and covariance propagated through the
// step in closed form); with the exact model's x0 the eta steps converge weakly at order 1 (the
// same propagation, no sampling noise); Euler-Maruyama on the eta SDE reaches strong order 1.
#include <sstream>

#include "helpers.hpp"
#include "pflow/experiment/run.hpp"
#include "pflow/sampler/convergence.hpp"
#include "pflow/sampler/denoiser.hpp"
#include "pflow/sampler/exponential.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sampler/time_grid.hpp"
#include "pflow/sde/factory.hpp"

using namespace pflow;
using namespace pflow::testing;
using json = nlohmann::json;

namespace {

// The scalar schedules the family is checked on, each with a time range inside its domain.
struct Schedule {
  json config;
  double t_start, t_end;
};
std::vector<Schedule> schedules() {
  return {{{{"type", "vp-linear"}, {"beta_min", 0.1}, {"beta_max", 20.0}}, 1.0, 1e-3},
          {{{"type", "vp-cosine"}}, 0.99, 1e-3},
          {{{"type", "sub-vp"}, {"beta_min", 0.1}, {"beta_max", 20.0}}, 1.0, 1e-3},
          {{{"type", "ve"}, {"sigma_min", 0.01}, {"sigma_max", 50.0}}, 1.0, 1e-3},
          {{{"type", "vp-discrete"}, {"schedule", "linear"}, {"T", 1000}}, 1.0, 1e-3},
          {{{"type", "vp-discrete"}, {"schedule", "cosine"}, {"T", 1000}}, 1.0, 1e-3}};
}

// One ddim step from s to t is x_t = a x0 + k eps + c z: its three coefficients, read off
// ddim_step itself with unit inputs (1 x 1).
struct StepCoefficients {
  double x0, eps, noise;
};
StepCoefficients coefficients(const ScalarPoint<double>& s, const ScalarPoint<double>& t,
                              double eta) {
  const Mat<double> one = Mat<double>::Constant(1, 1, 1.0), zero = Mat<double>::Zero(1, 1);
  StepCoefficients c;
  c.x0 = ddim_step<double>(s, t, eta, one, zero, &zero)(0, 0);
  c.eps = ddim_step<double>(s, t, eta, zero, one, &zero)(0, 0);
  c.noise = eta == 0 ? 0.0 : ddim_step<double>(s, t, eta, zero, zero, &one)(0, 0);
  return c;
}

}  // namespace

TEST_CASE("ddim's sigma_t(eta = 1) is the posterior q(x_t | x_s, x_0) on every scalar schedule",
          "[eta]") {
  for (const Schedule& schedule : schedules()) {
    INFO(schedule.config.dump());
    const auto sde = make_scalar_sde(schedule.config, 1);
    const auto grid = make_time_grid<double>(*sde, grid_named("time-uniform"), schedule.t_start,
                                             schedule.t_end, 25);
    for (size_t i = 0; i + 1 < grid.size(); i += 3) {
      const ScalarPoint<double> s(*sde, grid[i]), t(*sde, grid[i + 1]);
      // x_t = alpha_t x0 + sigma_t e1, x_s = r x_t + sqrt(sigma_s^2 - r^2 sigma_t^2) e2 with
      // r = alpha_s / alpha_t. Conditioning the pair on x_s (the Schur complement of the 2 x 2
      // covariance given x0): variance sigma_t^2 - (r sigma_t^2)^2 / sigma_s^2 and mean
      // alpha_t x0 + r sigma_t^2 / sigma_s^2 (x_s - alpha_s x0).
      const double r = s.alpha / t.alpha, vt = t.sigma * t.sigma, vs = s.sigma * s.sigma;
      const double variance = vt - (r * vt) * (r * vt) / vs;
      const StepCoefficients c = coefficients(s, t, 1.0);
      CHECK(std::abs(c.noise * c.noise - variance) <= 1e-14 * vt);
      // The step's mean for x0 = 0.7, x_s = -0.4: eps = (x_s - alpha_s x0) / sigma_s.
      const double x0 = 0.7, xs = -0.4, eps = (xs - s.alpha * x0) / s.sigma;
      const double mean = t.alpha * x0 + r * vt / vs * (xs - s.alpha * x0);
      CHECK(std::abs(c.x0 * x0 + c.eps * eps - mean) <= 1e-14 * (1 + std::abs(mean)));
      // eta = 0 keeps no noise; every eta keeps alpha_t on x0 and k^2 + c^2 = sigma_t^2.
      for (double eta : {0.0, 0.3, 0.8}) {
        const StepCoefficients ce = coefficients(s, t, eta);
        CHECK(ce.x0 == t.alpha);
        CHECK(std::abs(ce.eps * ce.eps + ce.noise * ce.noise - vt) <= 1e-14 * vt);
        CHECK(std::abs(ce.noise - eta * c.noise) <= 1e-15 * t.sigma);
      }
    }
  }
}

TEST_CASE("every ddim eta step keeps q(x_t) for Gaussian data (moments propagated in closed form)",
          "[eta]") {
  // Data N(m, S) in d = 2; the joint of (x0, x_s) is Gaussian with blocks S, Cov(x0, x_s) and
  // Var(x_s). A step with the true x0 is x_t = (a - k alpha_s / sigma_s) x0 + (k / sigma_s) x_s +
  // c z, so the joint moves in closed form; every step must land on q(x_t | x0), i.e.
  // Cov(x0, x_t) = alpha_t S, Var(x_t) = alpha_t^2 S + sigma_t^2 I, mean alpha_t m.
  Mat<double> data_cov(2, 2);
  data_cov << 1.0, 0.8, 0.8, 0.9;
  Vec<double> data_mean(2);
  data_mean << 0.5, -1.0;
  const Mat<double> identity = Mat<double>::Identity(2, 2);
  for (const Schedule& schedule : schedules()) {
    const auto sde = make_scalar_sde(schedule.config, 2);
    const bool discrete = schedule.config["type"] == "vp-discrete";
    // The chain on DDIM's quadratic subsequence tau of 1..T; the others on logSNR steps.
    const GridSpec spec = grid_named(discrete ? "discrete-quadratic" : "logsnr");
    const auto grid = make_time_grid<double>(*sde, spec, schedule.t_start, schedule.t_end, 20);
    for (double eta : {0.0, 0.25, 0.5, 1.0}) {
      INFO(schedule.config.dump() << ", eta = " << eta);
      const ScalarPoint<double> first(*sde, grid.front());
      Vec<double> mean = first.alpha * data_mean;
      Mat<double> cross = first.alpha * data_cov;  // Cov(x0, x_s)
      Mat<double> var = first.alpha * first.alpha * data_cov + first.sigma * first.sigma * identity;
      double worst = 0;
      for (size_t i = 0; i + 1 < grid.size(); ++i) {
        const ScalarPoint<double> s(*sde, grid[i]), t(*sde, grid[i + 1]);
        const StepCoefficients c = coefficients(s, t, eta);
        const double on_x0 = c.x0 - c.eps * s.alpha / s.sigma, on_xs = c.eps / s.sigma;
        mean = on_x0 * data_mean + on_xs * mean;
        const Mat<double> new_cross = on_x0 * data_cov + on_xs * cross;
        var = on_x0 * on_x0 * data_cov + on_x0 * on_xs * (cross + cross.transpose()) +
              on_xs * on_xs * var + c.noise * c.noise * identity;
        cross = new_cross;
        const double scale = t.alpha * t.alpha + t.sigma * t.sigma;
        worst = std::max({worst, max_diff(mean, Vec<double>(t.alpha * data_mean)) / scale,
                          max_diff(cross, Mat<double>(t.alpha * data_cov)) / scale,
                          max_diff(var, Mat<double>(t.alpha * t.alpha * data_cov +
                                                    t.sigma * t.sigma * identity)) /
                              scale});
      }
      CHECK(worst < 1e-12);
    }
  }
}

TEST_CASE("ddim with 0 < eta < 1 converges weakly at order 1 for Gaussian data (exact moments)",
          "[eta]") {
  // With the exact model the step is affine in x_s: x_t = P x_s + q + c z. Its P, q and c are read
  // off the solver's own step (ddim_step on the analytic model's x0 and eps at x_s = 0 and at
  // the unit vectors), the moments move as m <- P m + q, C <- P C P^T + c^2 I from the exact
  // q(x_{t_start}), and the weak error is the largest error of the final moments against the
  // exact q(x_{t_end}): no sampling noise.
  const json target = {
      {"type", "gaussian"}, {"mean", {0.5, -1.0}}, {"cov", {{1.0, 0.8}, {0.8, 0.9}}}};
  const auto data = make_target<double>(target);
  const Mat<double> identity = Mat<double>::Identity(2, 2);
  for (const Schedule& schedule :
       {schedules()[0], schedules()[3],
        Schedule{{{"type", "vp-discrete"}, {"schedule", "linear"}, {"T", 1000}}, 1.0, 0.01}}) {
    const auto sde = make_scalar_sde(schedule.config, 2);
    const AnalyticDenoiser<double> model(*sde, data);
    const DataMoments<double> moments = *model.data_moments();
    auto exact = [&](double time) {
      const ScalarPoint<double> p(*sde, time);
      return std::make_pair(
          Vec<double>(p.alpha * moments.mean),
          Mat<double>(p.alpha * p.alpha * moments.cov + p.sigma * p.sigma * identity));
    };
    for (double eta : {0.25, 0.5, 0.75, 1.0}) {
      INFO(schedule.config.dump() << ", eta = " << eta);
      std::vector<Level> levels;
      for (int steps : {16, 32, 64, 128, 256, 512}) {
        const auto grid = make_time_grid<double>(*sde, grid_named("logsnr"), schedule.t_start,
                                                 schedule.t_end, steps);
        auto [mean, cov] = exact(grid.front());
        for (size_t i = 0; i + 1 < grid.size(); ++i) {
          const ScalarPoint<double> s(*sde, grid[i]), t(*sde, grid[i + 1]);
          // Columns: x_s = 0, e_1, e_2; the step without noise, then the noise coefficient.
          Mat<double> probe = Mat<double>::Zero(2, 3);
          probe(0, 1) = probe(1, 2) = 1;
          const Mat<double> eps = -s.sigma * model.score(probe, s.t);
          const Mat<double> x0 = (probe - s.sigma * eps) / s.alpha;
          const Mat<double> zero = Mat<double>::Zero(2, 3);
          const Mat<double> image = ddim_step<double>(s, t, eta, x0, eps, &zero);
          const Vec<double> q = image.col(0);
          const Mat<double> p = image.rightCols(2).colwise() - q;
          const StepCoefficients c = coefficients(s, t, eta);
          mean = p * mean + q;
          cov = p * cov * p.transpose() + c.noise * c.noise * identity;
        }
        const auto [exact_mean, exact_cov] = exact(grid.back());
        Level l;
        l.steps = steps;
        l.nfe = steps;
        l.err_max = std::max(max_diff(mean, exact_mean), max_diff(cov, exact_cov));
        levels.push_back(l);
      }
      const OrderFit fit = fit_order(levels, 1e-13, 4);
      INFO("weak errors " << levels.front().err_max << " .. " << levels.back().err_max
                          << ", fitted order " << fit.order);
      CHECK(fit.order == Approx(1.0).margin(0.2));
      CHECK(levels.back().err_max < levels.front().err_max / 8);
    }
  }
}

TEST_CASE("in 50 digits: an eta step with the true x0 keeps q(x_t | x0)", "[eta]") {
  // x_t = alpha_t x0 + k eps + c z: alpha_t on x0 and k^2 + c^2 = sigma_t^2 for every eta, on
  // vp-linear and on the discrete chain.
  for (const json& config : {json{{"type", "vp-linear"}},
                             json{{"type", "vp-discrete"}, {"schedule", "linear"}, {"T", 1000}}}) {
    auto made = make_sde<mp50>(config, 1, "sde");
    const auto& sde = dynamic_cast<const ScalarSde<mp50>&>(*made);
    const Mat<mp50> one = Mat<mp50>::Constant(1, 1, mp50(1)), zero = Mat<mp50>::Zero(1, 1);
    for (const char* from_to : {"0.9 0.7", "0.3 0.299", "0.01 0.002"}) {
      std::istringstream in(from_to);
      std::string a, b;
      in >> a >> b;
      const ScalarPoint<mp50> s(sde, mp50(a)), t(sde, mp50(b));
      for (const char* eta_text : {"0.25", "0.5", "1"}) {
        const mp50 eta(eta_text);
        const mp50 on_x0 = ddim_step<mp50>(s, t, eta, one, zero, &zero)(0, 0);
        const mp50 on_eps = ddim_step<mp50>(s, t, eta, zero, one, &zero)(0, 0);
        const mp50 on_z = ddim_step<mp50>(s, t, eta, zero, zero, &one)(0, 0);
        INFO(config.dump() << " " << from_to << " eta " << eta_text);
        CHECK(to_double(mp50(abs(on_x0 - t.alpha))) < 1e-45);
        CHECK(to_double(mp50(abs(on_eps * on_eps + on_z * on_z - t.sigma * t.sigma))) < 1e-45);
      }
    }
  }
}

TEST_CASE("eta = 0.5: Euler-Maruyama on its SDE and ddim converge strongly to its fine solution",
          "[eta]") {
  // One Brownian path (2^12 intervals); the reference is Euler-Maruyama with eta = 0.5 on all
  // of them. ddim with eta = 0.5 discretises the same SDE, so both converge pathwise.
  const auto& p = order_problem<double>("gaussian");
  Problem<double> problem = p.problem();
  problem.seed = 7;
  const double t_end = 1e-2;
  auto solve_with = [&](const json& spec, int steps) {
    const auto grid = make_time_grid<double>(*p.sde, grid_named("time-uniform"), 1.0, t_end, steps);
    return solve(*make_solver<double>(spec), problem, grid, p.x_start).x;
  };
  const json em = {{"name", "euler-maruyama"}, {"eta", 0.5}};
  const Mat<double> fine = solve_with(em, 4096);
  for (const json& spec : {em, json{{"name", "ddim"}, {"eta", 0.5}}}) {
    std::vector<Level> levels;
    for (int steps : {64, 128, 256, 512}) {
      Level l;
      l.steps = steps;
      l.err_max = max_diff(solve_with(spec, steps), fine);
      levels.push_back(l);
    }
    const OrderFit fit = fit_order(levels, 1e-13);
    INFO(spec.dump() << ": strong order " << fit.order << ", errors " << levels.front().err_max
                     << " .. " << levels.back().err_max);
    CHECK(fit.order == Approx(1.0).margin(0.25));
  }
  // With eta = 1 against the eta = 0.5 reference the pathwise error does not converge.
  const double off = max_diff(solve_with(json{{"name", "ddim"}, {"eta", 1.0}}, 512), fine);
  const double on = max_diff(solve_with(json{{"name", "ddim"}, {"eta", 0.5}}, 512), fine);
  CHECK(off > 10 * on);
}

TEST_CASE("kind stochastic with eta = 0.5: strong and weak orders, moments against p_t_end",
          "[eta]") {
  const json config = {
      {"name", "eta_half"},
      {"kind", "stochastic"},
      {"sde", {{"type", "vp-linear"}}},
      {"target", {{"type", "gaussian"}, {"mean", {0.5, -1.0}}, {"cov", {{1.0, 0.8}, {0.8, 0.9}}}}},
      {"time", {{"t_start", 1.0}, {"t_end", 0.01}, {"grid", "time-uniform"}}},
      {"init", {{"count", 2000}, {"seed", 5}}},
      {"solvers", {{{"name", "ddim"}, {"eta", 0.5}}, {{"name", "euler-maruyama"}, {"eta", 0.5}}}},
      {"nfe", {16, 32, 64, 128}},
      {"brownian_levels", 11},
      {"seed", 7}};
  const ExperimentResult r = run_experiment(parse_experiment(config), {});
  CHECK_THAT(r.reference_method, Catch::StartsWith("euler-maruyama (eta = 0.5)"));
  for (const SolverRun& s : r.solvers) {
    INFO(s.label << ": strong " << s.fit.order << ", weak " << s.weak_fit.order);
    CHECK(s.fit.order == Approx(1.0).margin(0.25));
    for (const CellResult& c : s.cells) {
      REQUIRE(c.series.count("weak_exact") == 1);
      // The Monte-Carlo standard error of 2000 samples' moments (covariance entries ~1).
      CHECK(c.series.at("weak_exact")[1] > 0.005);
      CHECK(c.series.at("weak_exact")[1] < 0.1);
    }
  }
  // Fixed initial points are not samples of p_t_start: no comparison with p_t_end's moments.
  json fixed = config;
  fixed["init"] = {{"points", {{0.3, -1.1}, {1.2, 0.4}}}};
  fixed["nfe"] = {16, 32};
  fixed["brownian_levels"] = 8;
  const ExperimentResult f = run_experiment(parse_experiment(fixed), {});
  CHECK(f.solvers[0].cells[0].series.count("weak_exact") == 0);
}
