// Flow matching and model outputs (docs/NOTES.md sec. 17): the rectified-flow schedule, Euler in
// velocity form against DDIM (on rectified flow, and on vp-linear after the change of variables
// z = x / (alpha + sigma), tau = sigma / (alpha + sigma)), the conditional flow-matching target
// averaged over the posterior against the probability-flow velocity, the exact flow maps of
// vp-linear and rectified flow under that change of variables, every model output of the exact
// model giving the same samples, and the seed's v-prediction step against DDIM's.
#include "helpers.hpp"
#include "pflow/flow/exact_flow.hpp"
#include "pflow/sampler/exponential.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sampler/time_grid.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/sde/vp_discrete.hpp"

using namespace pflow;
using namespace pflow::testing;
using json = nlohmann::json;

namespace {

Mat<double> points() {
  Mat<double> x(2, 5);
  x << 0.3, 1.2, -0.8, -1.5, 0.1, -1.1, 0.4, 0.9, -0.6, 2.0;
  return x;
}

Mat<double> sample(const json& solver, const ScalarSde<double>& sde, const Denoiser<double>& model,
                   const std::vector<double>& grid, const Mat<double>& x) {
  Problem<double> problem;
  problem.sde = &sde;
  problem.model = &model;
  return solve(*make_solver<double>(solver), problem, grid, x).x;
}

}  // namespace

TEST_CASE("rectified-flow: alpha = 1 - t, sigma = t, lambda and its inverse, f and g^2",
          "[flow-matching]") {
  const auto sde = make_scalar_sde({{"type", "rectified-flow"}}, 1);
  for (double t : {1e-6, 0.01, 0.3, 0.5, 0.9, 0.999}) {
    INFO("t = " << t);
    CHECK(sde->alpha(t) == 1 - t);
    CHECK(sde->sigma(t) == t);
    CHECK(std::abs(sde->lambda(t) - std::log((1 - t) / t)) <=
          1e-14 * (1 + std::abs(sde->lambda(t))));
    CHECK(std::abs(sde->t_of_lambda(sde->lambda(t)) - t) <= 1e-15 * (1 + t) + 1e-16);
    // f = d log alpha / dt and g^2 = d sigma^2/dt - 2 f sigma^2 by central differences.
    const double h = 1e-4 * (1 - t);
    const double f = (std::log(1 - t - h) - std::log(1 - t + h)) / (2 * h);
    CHECK(std::abs(sde->f(t) - f) <= 1e-7 * std::abs(f));
    const double g2 = 2 * t - 2 * sde->f(t) * t * t;
    CHECK(std::abs(sde->g2(t) - g2) <= 1e-14 * g2);
  }
  // Psi and Sigma by Van Loan's block exponential against the closed forms: `pflow verify
  // --sde rectified-flow` (ctest cli_verify_rectified_flow) and the [verify] suite.
}

TEST_CASE("Euler in velocity form is DDIM: on rectified flow, and on vp-linear in (z, tau)",
          "[flow-matching]") {
  const auto data = make_target<double>(headline_mixture());
  // Rectified flow: alpha + sigma = 1, so z = x and tau = t; the whole solve agrees.
  const auto rf = make_scalar_sde({{"type", "rectified-flow"}}, 2);
  const AnalyticDenoiser<double> rf_model(*rf, data);
  for (int steps : {4, 16, 64}) {
    // From t = 0.99: near t = 1 the velocity f x - g^2/2 score of a score model cancels two
    // terms of size 1 / (1 - t), and a step keeps ~ (t - s) / (1 - t) ulp of that.
    const auto grid = make_time_grid<double>(*rf, grid_named("time-uniform"), 0.99, 1e-3, steps);
    const Mat<double> euler = sample("euler-velocity", *rf, rf_model, grid, points());
    const Mat<double> ddim = sample("ddim", *rf, rf_model, grid, points());
    INFO("steps " << steps);
    CHECK(max_diff(euler, ddim) < 1e-14);
  }
  // vp-linear: one DDIM step from s to t equals one Euler step of dz/dtau = eps_hat - x0_hat
  // from (z_s, tau_s) to tau_t, then x_t = (alpha_t + sigma_t) z_t (seed 003).
  const auto vp = make_scalar_sde({{"type", "vp-linear"}}, 2);
  const AnalyticDenoiser<double> model(*vp, data);
  const auto grid = make_time_grid<double>(*vp, grid_named("logsnr"), 1.0, 1e-3, 12);
  Mat<double> x = points();
  for (size_t i = 0; i + 1 < grid.size(); ++i) {
    const ScalarPoint<double> s(*vp, grid[i]), t(*vp, grid[i + 1]);
    const Mat<double> eps = -s.sigma * model.score(x, s.t);
    const Mat<double> x0 = (x - s.sigma * eps) / s.alpha;
    const double tau_s = s.sigma / (s.alpha + s.sigma), tau_t = t.sigma / (t.alpha + t.sigma);
    const Mat<double> z = x / (s.alpha + s.sigma) + (tau_t - tau_s) * (eps - x0);
    const Mat<double> euler = (t.alpha + t.sigma) * z;
    const Mat<double> ddim = ddim_step<double>(s, t, 0.0, x0, eps, nullptr);
    INFO("step " << i);
    CHECK(max_diff(euler, ddim) < 1e-14 * (1 + ddim.cwiseAbs().maxCoeff()));
    x = ddim;
  }
}

TEST_CASE("the conditional flow-matching target averaged over the posterior is the PF-ODE velocity",
          "[flow-matching]") {
  // u(x_t | x0) = alpha' x0 + sigma' eps, eps = (x_t - alpha x0) / sigma; averaged over
  // p(x0 | x_t) it is alpha' E[x0 | x_t] + sigma' (x_t - alpha E[x0 | x_t]) / sigma. For a mixture
  // E[x0 | x_t] = sum_k r_k (m_k + alpha S_k C_k^{-1} (x_t - alpha m_k)), C_k = alpha^2 S_k +
  // sigma^2 I, r_k the posterior component weights: written out here, against f x - g^2/2 score
  // from the mixture's marginal score.
  const auto data = make_target<double>(headline_mixture());
  const Mat<double> x = points();
  for (const json& config :
       {json{{"type", "rectified-flow"}}, json{{"type", "vp-linear"}}, json{{"type", "ve"}}}) {
    const auto sde = make_scalar_sde(config, 2);
    for (double t : {0.05, 0.4, 0.9}) {
      INFO(config.dump() << ", t = " << t);
      const double alpha = sde->alpha(t), sigma = sde->sigma(t);
      // alpha' and sigma' by the exact relations alpha' = f alpha and sigma' = (g^2 + 2 f
      // sigma^2) / (2 sigma).
      const double dalpha = sde->f(t) * alpha;
      const double dsigma = (sde->g2(t) + 2 * sde->f(t) * sigma * sigma) / (2 * sigma);
      Mat<double> posterior_mean = Mat<double>::Zero(2, x.cols());
      for (Eigen::Index j = 0; j < x.cols(); ++j) {
        std::vector<double> log_w;
        std::vector<Vec<double>> means;
        for (int k = 0; k < data.components(); ++k) {
          const Mat<double> s = data.cov(k).to_dense();
          const Vec<double> m = data.means().col(k);
          const Mat<double> c = alpha * alpha * s + sigma * sigma * Mat<double>::Identity(2, 2);
          const Eigen::LLT<Mat<double>> llt(c);
          const Vec<double> r = x.col(j) - alpha * m;
          const Vec<double> solved = llt.solve(r);
          const double logdet = 2 * llt.matrixL().toDenseMatrix().diagonal().array().log().sum();
          log_w.push_back(std::log(data.weights()(k)) - 0.5 * r.dot(solved) - 0.5 * logdet);
          means.push_back(m + alpha * s * solved);
        }
        const double top = *std::max_element(log_w.begin(), log_w.end());
        double total = 0;
        for (double& l : log_w) total += (l = std::exp(l - top));
        for (size_t k = 0; k < means.size(); ++k)
          posterior_mean.col(j) += log_w[k] / total * means[k];
      }
      const Mat<double> averaged_target =
          dalpha * posterior_mean + dsigma * (x - alpha * posterior_mean) / sigma;
      const Mat<double> score = Marginal<double>(*sde, data, t).score(x);
      const Mat<double> pf_velocity = sde->f(t) * x - sde->g2(t) / 2 * score;
      CHECK(max_diff(averaged_target, pf_velocity) <
            1e-12 * (1 + pf_velocity.cwiseAbs().maxCoeff()));
    }
  }
}

TEST_CASE("the exact flow maps of vp-linear and rectified flow agree under x / (alpha + sigma)",
          "[flow-matching]") {
  // x_t of vp-linear over (alpha + sigma)(t) is rectified flow's state at tau = sigma / (alpha +
  // sigma): both marginals are then N(alpha/(alpha+sigma) m, ...), and so are the flows.
  const auto data = make_target<double>(
      json{{"type", "gaussian"}, {"mean", {0.5, -1.0}}, {"cov", {{1.0, 0.8}, {0.8, 0.9}}}});
  const auto vp = make_scalar_sde({{"type", "vp-linear"}}, 2);
  const auto rf = make_scalar_sde({{"type", "rectified-flow"}}, 2);
  auto tau = [&](double t) { return vp->sigma(t) / (vp->alpha(t) + vp->sigma(t)); };
  auto scale = [&](double t) { return vp->alpha(t) + vp->sigma(t); };
  const Mat<double> x = points();
  for (auto [s, t] : {std::pair{1.0, 1e-3}, std::pair{0.7, 0.2}, std::pair{0.3, 0.01}}) {
    INFO("s = " << s << ", t = " << t);
    const Mat<double> via_vp = exact_flow_scalar<double>(*vp, data, x, s, t) / scale(t);
    const Mat<double> via_rf = exact_flow_scalar<double>(*rf, data, x / scale(s), tau(s), tau(t));
    CHECK(max_diff(via_vp, via_rf) < 1e-12);
  }
}

TEST_CASE("every output of the exact model gives the same samples", "[flow-matching]") {
  const auto data = make_target<double>(headline_mixture());
  const json solvers[] = {"ddim",
                          "dpm-solver-3",
                          "dpm-solver++-2m",
                          "dpm-solver++-3m",
                          json{{"name", "unipc"}, {"order", 3}},
                          "deis-tab-3",
                          "euler-velocity",
                          "rk4",
                          "heun-edm"};
  for (const json& config : {json{{"type", "vp-linear"}}, json{{"type", "rectified-flow"}}}) {
    const auto sde = make_scalar_sde(config, 2);
    // Rectified flow from t = 0.99 (as above: near t = 1, alpha -> 0 amplifies one ulp of the
    // first evaluation; deis-tab-3 from t = 0.999 turns an ulp of eps into 5e-13 of the sample).
    const double t_start = config["type"] == "vp-linear" ? 1.0 : 0.99;
    const auto grid = make_time_grid<double>(*sde, grid_named("logsnr"), t_start, 1e-2, 12);
    const AnalyticDenoiser<double> score_model(*sde, data);
    for (const json& solver : solvers) {
      const Mat<double> expected = sample(solver, *sde, score_model, grid, points());
      for (const std::string& output : model_output_names()) {
        const AnalyticDenoiser<double> model(
            *sde, data, static_cast<ModelOutput>(&output - &model_output_names()[0]));
        INFO(config.dump() << ", " << solver.dump() << ", output " << output);
        CHECK(max_diff(sample(solver, *sde, model, grid, points()), expected) < 1e-14);
      }
    }
  }
}

TEST_CASE("the seed's v-prediction step is DDIM's step on the discrete chain", "[flow-matching]") {
  // With a_t = sqrt(abar_t), b_t = sqrt(1 - abar_t) and v = a eps - b x0: eps_hat = b x + a v_hat,
  // x0_hat = a x - b v_hat, mu_hat = (x - beta_t / b_t eps_hat) / sqrt(1 - beta_t), DDPM's mean.
  // DDIM (eta = 1, no noise) from step i to i - 1 with the same model has that mean.
  const auto sde =
      make_sde<double>({{"type", "vp-discrete"}, {"schedule", "linear"}, {"T", 1000}}, 2, "sde");
  const auto& chain = dynamic_cast<const VpDiscrete<double>&>(*sde);
  const auto data = make_target<double>(headline_mixture());
  const AnalyticDenoiser<double> model(chain, data, ModelOutput::v);
  const Mat<double> x = points(), zero = Mat<double>::Zero(2, x.cols());
  for (int i : {1000, 700, 200, 20, 2}) {
    INFO("step " << i);
    const double t = chain.step_time(i), abar = chain.alpha_bar(i);
    const double a = std::sqrt(abar), b = std::sqrt(1 - abar), beta = chain.betas()[i - 1];
    const Mat<double> v_hat = model.predict(x, t);
    const Mat<double> eps_hat = b * x + a * v_hat, x0_hat = a * x - b * v_hat;
    const Mat<double> mu_hat = (x - beta / b * eps_hat) / std::sqrt(1 - beta);
    const ScalarPoint<double> s_point(chain, t), t_point(chain, chain.step_time(i - 1));
    const Mat<double> ddim = ddim_step<double>(s_point, t_point, 1.0, x0_hat, eps_hat, &zero);
    CHECK(max_diff(ddim, mu_hat) < 1e-14 * (1 + mu_hat.cwiseAbs().maxCoeff()));
  }
}

TEST_CASE(
    "in 50 digits: Euler in velocity form is DDIM on rectified flow, and the flow maps "
    "agree under x / (alpha + sigma)",
    "[flow-matching]") {
  const Mat<mp50> x = points().cast<mp50>();
  const auto data = make_target<mp50>(headline_mixture());
  const auto rf = make_scalar_sde<mp50>({{"type", "rectified-flow"}}, 2);
  const AnalyticDenoiser<mp50> model(*rf, data);
  Problem<mp50> problem;
  problem.sde = rf.get();
  problem.model = &model;
  const auto grid =
      make_time_grid<mp50>(*rf, grid_named("time-uniform"), mp50("0.999"), mp50("0.001"), 8);
  const Mat<mp50> euler = solve(*make_solver<mp50>(json("euler-velocity")), problem, grid, x).x;
  const Mat<mp50> ddim = solve(*make_solver<mp50>(json("ddim")), problem, grid, x).x;
  CHECK(max_diff(euler, ddim) < 1e-40);
  const auto gauss = make_target<mp50>(
      json{{"type", "gaussian"}, {"mean", {0.5, -1.0}}, {"cov", {{1.0, 0.8}, {0.8, 0.9}}}});
  const auto vp = make_scalar_sde<mp50>({{"type", "vp-linear"}}, 2);
  auto tau = [&](const mp50& t) { return mp50(vp->sigma(t) / (vp->alpha(t) + vp->sigma(t))); };
  auto scale = [&](const mp50& t) { return mp50(vp->alpha(t) + vp->sigma(t)); };
  const mp50 s = 1, t = mp50("0.001");
  const Mat<mp50> via_vp = exact_flow_scalar<mp50>(*vp, gauss, x, s, t) / scale(t);
  const Mat<mp50> via_rf =
      exact_flow_scalar<mp50>(*rf, gauss, Mat<mp50>(x / scale(s)), tau(s), tau(t));
  CHECK(max_diff(via_vp, via_rf) < 1e-40);
}
