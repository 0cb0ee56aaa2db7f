// Discrete time: the vp-discrete chain in continuous time (its steps, the reference interpolation
// between them, lambda and its inverse), DDPM's posterior against Gaussian conditioning, DDPM's
// ancestral step against DDIM with eta = 1, the integer-step grids, and the chain's approach to
// vp-linear as T grows.
#include "helpers.hpp"
#include "pflow/sampler/exponential.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sampler/time_grid.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/sde/vp_discrete.hpp"

using namespace pflow;
using json = nlohmann::json;

namespace {

template <class Scalar>
std::unique_ptr<VpDiscrete<Scalar>> chain(const json& config) {
  auto sde = make_sde<Scalar>(config, 1, "sde");
  return std::unique_ptr<VpDiscrete<Scalar>>(dynamic_cast<VpDiscrete<Scalar>*>(sde.release()));
}

double relative(double got, double expected) {
  return std::abs(got - expected) / std::max(std::abs(expected), 1e-300);
}

}  // namespace

TEST_CASE("vp-discrete: alpha-bar at every step, the reference interpolation between steps",
          "[discrete]") {
  const json linear = {{"type", "vp-discrete"}, {"schedule", "linear"}, {"T", 1000}};
  const auto sde = chain<double>(linear);
  const auto sde50 = chain<mp50>(linear);
  REQUIRE(sde->steps() == 1000);
  CHECK(sde->betas().front() == 1e-4);
  CHECK(relative(sde->betas().back(), 0.02) < 1e-15);
  // alpha-bar_i as the plain product of (1 - beta_j) in 50 digits.
  mp50 product = 1;
  std::vector<mp50> abar = {product};
  for (const mp50& beta : sde50->betas()) abar.push_back(product *= 1 - beta);
  for (int i : {1, 2, 10, 500, 999, 1000}) {
    INFO("step " << i);
    const double t = i / 1000.0;
    CHECK(relative(std::pow(sde->alpha(t), 2), to_double(abar[i])) < 1e-14);
    CHECK(relative(sde->sigma(t) * sde->sigma(t), to_double(mp50(1 - abar[i]))) < 1e-13);
    const mp50 t50 = sde50->step_time(i);
    CHECK(to_double(mp50(abs(sde50->alpha(t50) * sde50->alpha(t50) - abar[i]))) < 1e-45);
  }
  // Between steps log alpha is linear in t (the reference implementation's interpolation): at
  // t = (i + 0.3) / N it is 0.7 log alpha_i + 0.3 log alpha_{i+1}; the slope is f.
  for (int i : {1, 250, 998}) {
    const mp50 t50 = (mp50(i) + mp50("0.3")) / 1000;
    const mp50 expected = (mp50("0.7") * log(abar[i]) + mp50("0.3") * log(abar[i + 1])) / 2;
    CHECK(to_double(mp50(abs(sde50->log_alpha(t50) - expected))) < 1e-45);
    CHECK(to_double(mp50(abs(sde50->f(t50) - 1000 * (log(abar[i + 1]) - log(abar[i])) / 2))) <
          1e-44);
    CHECK(sde50->g2(t50) == -2 * sde50->f(t50));
  }
  // Below step 1 the piece ends at alpha(0) = 1: the data.
  CHECK(sde->alpha(0.0) == 1.0);
  CHECK(sde->sigma(0.0) == 0.0);
  // lambda decreases and t_of_lambda inverts it on every piece.
  for (double t : {0.0004, 0.001, 0.0105, 0.3337, 0.5, 0.999, 1.0}) {
    INFO("t = " << t);
    CHECK(relative(sde->t_of_lambda(sde->lambda(t)), t) < 1e-12);
    CHECK(sde->lambda(t) > sde->lambda(t + 1e-4));
  }
  // Cosine: beta_i = 1 - abar(i) / abar(i - 1), clipped at 0.999 (the last step).
  const auto cosine = chain<double>({{"type", "vp-discrete"}, {"schedule", "cosine"}, {"T", 100}});
  auto abar_cos = [](int i) {
    const double c = std::cos((i / 100.0 + 0.008) / 1.008 * M_PI / 2);
    return c * c;
  };
  CHECK(relative(cosine->betas()[0], 1 - abar_cos(1) / abar_cos(0)) < 1e-12);
  CHECK(relative(cosine->betas()[49], 1 - abar_cos(50) / abar_cos(49)) < 1e-12);
  CHECK(cosine->betas()[99] == 0.999);
  // Song et al.'s discretisation of vp-linear at T = 1000 is DDPM's linear schedule.
  const auto song = chain<double>({{"type", "vp-discrete"}, {"schedule", "vp-linear"}});
  for (size_t i = 0; i < 1000; i += 111) CHECK(relative(song->betas()[i], sde->betas()[i]) < 1e-14);
  // An explicit list.
  const auto listed = chain<double>({{"type", "vp-discrete"}, {"betas", {0.1, 0.2, 0.2}}});
  CHECK(relative(listed->alpha_bar(3), 0.9 * 0.8 * 0.8) < 1e-15);
}

TEST_CASE("DDPM's posterior mean and variance equal Gaussian conditioning", "[discrete]") {
  // Per coordinate, given x_0: x_{i-1} = sqrt(abar_{i-1}) x_0 + sqrt(1 - abar_{i-1}) e1 and
  // x_i = sqrt(1 - beta_i) x_{i-1} + sqrt(beta_i) e2. Conditioning the joint Gaussian of
  // (x_{i-1}, x_i) on x_i in 50 digits: mean m1 + (v12 / v22) (x_i - m2), variance
  // v11 - v12^2 / v22.
  for (const char* schedule : {"linear", "cosine"}) {
    // The 50-digit chain gets the double chain's betas exactly (a cosine beta_1 ~ 4e-5 carries a
    // relative rounding error of ~1e-12 from the double cosines), so that only the formulas
    // differ.
    const auto sde = chain<double>({{"type", "vp-discrete"}, {"schedule", schedule}, {"T", 1000}});
    const auto sde50 = chain<mp50>({{"type", "vp-discrete"}, {"betas", sde->betas()}});
    for (int i : {1, 2, 37, 500, 1000}) {
      INFO(schedule << " step " << i);
      mp50 abar_before = 1;
      for (int j = 0; j < i - 1; ++j) abar_before *= 1 - sde50->betas()[j];
      const mp50 beta = sde50->betas()[i - 1], abar_now = abar_before * (1 - beta);
      const mp50 v11 = 1 - abar_before, v12 = sqrt(mp50(1 - beta)) * v11, v22 = 1 - abar_now;
      const mp50 a = v12 / v22;                               // coefficient of x_i
      const mp50 b = sqrt(abar_before) - a * sqrt(abar_now);  // of x_0
      const mp50 variance = v11 - v12 * v12 / v22;
      const auto p = sde->posterior(i);
      CHECK(std::abs(p.x_coefficient - to_double(a)) < 1e-14 * std::max(1.0, to_double(a)));
      CHECK(std::abs(p.x0_coefficient - to_double(b)) < 1e-14 * std::max(1.0, to_double(b)));
      CHECK(std::abs(p.variance - to_double(variance)) <= 1e-14 * to_double(variance));
      // In 50 digits the closed forms agree to the working precision.
      const auto p50 = sde50->posterior(i);
      CHECK(to_double(mp50(abs(p50.variance - variance))) < 1e-45);
    }
  }
}

TEST_CASE("DDPM's ancestral step is DDIM with eta = 1 on the chain's steps", "[discrete]") {
  const auto sde = chain<double>({{"type", "vp-discrete"}, {"schedule", "linear"}, {"T", 1000}});
  Rng rng(3);
  const Mat<double> x = rng.normal_matrix<double>(2, 6), x0 = rng.normal_matrix<double>(2, 6),
                    z = rng.normal_matrix<double>(2, 6);
  for (int i : {1, 2, 10, 500, 1000}) {
    INFO("step " << i);
    const ScalarPoint<double> s(*sde, sde->step_time(i)), t(*sde, sde->step_time(i - 1));
    const Mat<double> eps = (x - s.alpha * x0) / s.sigma;
    const Mat<double> ddim = ddim_step<double>(s, t, 1.0, x0, eps, &z);
    const auto p = sde->posterior(i);
    const Mat<double> ddpm =
        p.x_coefficient * x + p.x0_coefficient * x0 + std::sqrt(p.variance) * z;
    CHECK((ddim - ddpm).cwiseAbs().maxCoeff() < 1e-14 * ddpm.cwiseAbs().maxCoeff());
  }
}

TEST_CASE("integer-step grids: DDIM's uniform and quadratic subsequences", "[discrete]") {
  const auto sde = chain<double>({{"type", "vp-discrete"}, {"schedule", "linear"}, {"T", 1000}});
  auto steps_of = [&](const std::string& kind, double t_start, double t_end, int steps) {
    GridSpec spec;
    spec.kind = kind;
    std::vector<int> out;
    for (double t : make_time_grid<double>(*sde, spec, t_start, t_end, steps))
      out.push_back(static_cast<int>(std::lround(t * 1000)));
    return out;
  };
  CHECK(steps_of("discrete-uniform", 1.0, 0.001, 10) ==
        std::vector<int>{1000, 900, 800, 700, 600, 501, 401, 301, 201, 101, 1});
  CHECK(steps_of("discrete-quadratic", 1.0, 0.001, 5) ==
        std::vector<int>{1000, 640, 361, 161, 41, 1});
  CHECK(steps_of("discrete-uniform", 0.5, 0.01, 49) == [] {
    std::vector<int> v;
    for (int i = 500; i >= 10; i -= 10) v.push_back(i);
    return v;
  }());
  GridSpec spec;
  spec.kind = "discrete-uniform";
  CHECK_THROWS_WITH(make_time_grid<double>(*sde, spec, 1.0, 0.0015, 10),
                    Catch::Contains("time.t_end = 0.0015: must be a step of the chain"));
  CHECK_THROWS_WITH(make_time_grid<double>(*sde, spec, 0.01, 0.001, 10),
                    Catch::Contains("exceeds the 9 chain steps"));
  spec.kind = "discrete-quadratic";
  CHECK_THROWS_WITH(make_time_grid<double>(*sde, spec, 1.0, 0.001, 400),
                    Catch::Contains("gives repeated steps"));
  const auto vp = make_sde<double>(json{{"type", "vp-linear"}}, 1, "sde");
  CHECK_THROWS_WITH(make_time_grid<double>(*vp, spec, 1.0, 0.001, 10),
                    Catch::Contains("needs the integer steps of a vp-discrete SDE"));
}

TEST_CASE("vp-discrete configs are validated by field", "[discrete]") {
  auto error = [](const json& config) {
    try {
      make_sde<double>(config, 1, "sde");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error({{"type", "vp-discrete"}, {"betas", {0.1, 0.05}}}),
             Catch::Contains("sde.betas[1] = 0.05: betas must not decrease"));
  CHECK_THAT(error({{"type", "vp-discrete"}, {"betas", {0.1, 1.0}}}),
             Catch::Contains("sde.betas[1] = 1: must lie in (0, 1)"));
  CHECK_THAT(error({{"type", "vp-discrete"}, {"schedule", "linear"}, {"T", 0}}),
             Catch::Contains("sde.T = 0: must be 1 to 100000 steps"));
  CHECK_THAT(error({{"type", "vp-discrete"}}), Catch::Contains("needs exactly one of 'betas'"));
  CHECK_THAT(error({{"type", "vp-discrete"}, {"betas", {0.1}}, {"T", 10}}),
             Catch::Contains("sde.T = 10: applies to a named schedule"));
  CHECK_THAT(error({{"type", "vp-discrete"}, {"schedule", "quadratic"}}),
             Catch::Contains("sde.schedule = quadratic"));
}

TEST_CASE("as T grows the chain's DDIM map approaches vp-linear's at first order", "[discrete]") {
  // The same DDIM solve (20 steps, uniform in t from 1 to 0.05, the exact score of a 1-D
  // mixture under each SDE) on Song et al.'s chain with T steps and on vp-linear: the chain's
  // alpha-bar is a Riemann product of the SDE's, so the maps differ by O(1/T).
  const json mixture = {{"type", "gmm"},
                        {"weights", {0.3, 0.7}},
                        {"means", {{-1.0}, {1.5}}},
                        {"covs", {{{0.04}}, {{0.25}}}}};
  const auto data = make_target<double>(mixture, "target");
  const auto vp = make_sde<double>(json{{"type", "vp-linear"}}, 1, "sde");
  GridSpec spec;
  spec.kind = "time-uniform";
  const std::vector<double> grid = make_time_grid<double>(*vp, spec, 1.0, 0.05, 20);
  Rng rng(7);
  const Mat<double> x = rng.normal_matrix<double>(1, 16);
  const auto ddim = make_solver<double>(json("ddim"));
  auto solve_on = [&](const LinearSde<double>& sde) {
    const AnalyticDenoiser<double> model(sde, data);
    Problem<double> problem;
    problem.sde = &sde;
    problem.model = &model;
    return solve(*ddim, problem, grid, x).x;
  };
  const Mat<double> continuous = solve_on(*vp);
  std::vector<double> logs_t, logs_err;
  for (int steps : {250, 500, 1000, 2000, 4000}) {
    const auto sde =
        chain<double>({{"type", "vp-discrete"}, {"schedule", "vp-linear"}, {"T", steps}});
    const double gap = (solve_on(*sde) - continuous).cwiseAbs().maxCoeff();
    UNSCOPED_INFO("T = " << steps << ": " << gap);
    logs_t.push_back(std::log(double(steps)));
    logs_err.push_back(std::log(gap));
  }
  // Least-squares slope of log gap against log T.
  const double n = static_cast<double>(logs_t.size());
  double st = 0, se = 0, stt = 0, ste = 0;
  for (size_t k = 0; k < logs_t.size(); ++k) {
    st += logs_t[k];
    se += logs_err[k];
    stt += logs_t[k] * logs_t[k];
    ste += logs_t[k] * logs_err[k];
  }
  const double slope = (n * ste - st * se) / (n * stt - st * st);
  INFO("rate " << -slope);
  CHECK(-slope == Approx(1).margin(0.1));
}
