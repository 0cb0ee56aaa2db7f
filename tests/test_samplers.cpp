// Samplers: phi-functions, time grids, the driver's bookkeeping, identities between methods,
// exactness on polynomial models and Gaussian data, gDDIM/paDDIM on CLD, stochastic solvers and
// input errors. Convergence orders are in test_orders.cpp.
#include <algorithm>
#include <cmath>

#include "helpers.hpp"
#include "pflow/sampler/convergence.hpp"
#include "pflow/sampler/deis.hpp"
#include "pflow/sampler/phi.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sampler/time_grid.hpp"
#include "pflow/sde/cld.hpp"
#include "pflow/sde/factory.hpp"

using namespace pflow;
using pflow::testing::max_diff;
using json = nlohmann::json;

namespace {

// phi_k(z) by the plain recurrence from exp (not expm1) in 50 digits: at z = 1e-8 it loses
// 8k digits, leaving more than 20 for phi_4.
double phi_reference(int k, double z) {
  mp50 zz = from_double<mp50>(z);
  mp50 value = exp(zz), inverse_factorial = 1;
  for (int i = 0; i < k; ++i) {
    value = (value - inverse_factorial) / zz;
    inverse_factorial /= (i + 1);
  }
  return static_cast<double>(value);
}

// A model whose x0 prediction is a fixed polynomial in lambda (vector coefficients), or whose
// eps prediction is a polynomial in t or in rho = sigma/alpha: every multistep method of order k
// must integrate a degree k-1 polynomial in its own variable exactly.
template <class Scalar>
class PolynomialModel : public Denoiser<Scalar> {
 public:
  enum Kind { x0_in_lambda, eps_in_t, eps_in_rho };
  PolynomialModel(const ScalarSde<Scalar>& sde, Kind kind, std::vector<Vec<Scalar>> coeffs)
      : sde_(sde), kind_(kind), coeffs_(std::move(coeffs)) {}
  std::string name() const override { return "polynomial"; }
  Vec<Scalar> value(const Scalar& t) const {
    const Scalar u = kind_ == x0_in_lambda ? sde_.lambda(t)
                     : kind_ == eps_in_t   ? t
                                           : Scalar(sde_.sigma(t) / sde_.alpha(t));
    Vec<Scalar> v = Vec<Scalar>::Zero(coeffs_[0].size());
    Scalar power = 1;
    for (const auto& c : coeffs_) v += power * c, power *= u;
    return v;
  }
  Mat<Scalar> score(const Mat<Scalar>& x, const Scalar& t) const override {
    const Scalar a = sde_.alpha(t), s = sde_.sigma(t);
    if (kind_ == x0_in_lambda) return ((a * value(t)).replicate(1, x.cols()) - x) / (s * s);
    return -(value(t) / s).replicate(1, x.cols());
  }
  // The exact flow: x_t = (sigma_t/sigma_s) x_s + sigma_t int e^l x0 dl (x0 form) or
  // x_t = (alpha_t/alpha_s) x_s - alpha_t int e^{-l} eps dl (eps form), by 8 panels of 48-point
  // Gauss-Legendre in lambda (the integrands are analytic: far below round-off).
  Mat<Scalar> flow(const Mat<Scalar>& x, const Scalar& s, const Scalar& t) const {
    const auto [nodes, weights] = gauss_legendre<Scalar>(48);
    const Scalar l0 = sde_.lambda(s), l1 = sde_.lambda(t);
    Vec<Scalar> integral = Vec<Scalar>::Zero(x.rows());
    const int panels = 8;
    for (int p = 0; p < panels; ++p) {
      const Scalar a = l0 + (l1 - l0) * p / panels, b = l0 + (l1 - l0) * (p + 1) / panels;
      for (size_t n = 0; n < nodes.size(); ++n) {
        const Scalar l = (a + b) / 2 + (b - a) / 2 * nodes[n];
        const Scalar w = weights[n] * (b - a) / 2;
        const Scalar tl = sde_.t_of_lambda(l);
        integral += (kind_ == x0_in_lambda ? w * exp(l) : Scalar(-w * exp(-l))) * value(tl);
      }
    }
    if (kind_ == x0_in_lambda)
      return (sde_.sigma(t) / sde_.sigma(s)) * x +
             (sde_.sigma(t) * integral).replicate(1, x.cols());
    return (sde_.alpha(t) / sde_.alpha(s)) * x + (sde_.alpha(t) * integral).replicate(1, x.cols());
  }

 private:
  const ScalarSde<Scalar>& sde_;
  Kind kind_;
  std::vector<Vec<Scalar>> coeffs_;
};

template <class Scalar>
Mat<Scalar> init_points() {
  Mat<Scalar> x(2, 3);
  x << decimal<Scalar>("0.3"), decimal<Scalar>("1.2"), decimal<Scalar>("-0.8"),
      decimal<Scalar>("-1.1"), decimal<Scalar>("0.4"), decimal<Scalar>("0.9");
  return x;
}

template <class Scalar>
Mat<Scalar> run(const json& spec, const Problem<Scalar>& problem, const std::vector<Scalar>& grid,
                const Mat<Scalar>& x, long* nfe = nullptr) {
  const auto solver = make_solver<Scalar>(spec);
  const auto r = solve(*solver, problem, grid, x);
  if (nfe) *nfe = r.nfe;
  return r.x;
}

}  // namespace

TEST_CASE("phi-functions are within 2 ulps near 0 and beyond", "[samplers][phi]") {
  // Relative error in units of 2^-53 (half an ulp at 1): z on a 1/64 grid over [-8, 8] (the
  // switch points -3 and 4 included), tiny |z| and the old series boundary |z| = 1.
  std::vector<double> zs = {1e-8, -1e-8, 1e-4, -1e-4, -1.0, 1.0};
  for (int i = -512; i <= 512; ++i) zs.push_back(i / 64.0 + 1.0 / 4096);
  for (int k = 1; k <= 4; ++k) {
    double worst = 0, worst_z = 0;
    for (double z : zs) {
      const double expected = phi_reference(k, z);
      const double units = std::abs(phi<double>(k, z) - expected) / std::abs(expected) * 0x1p53;
      if (units > worst) worst = units, worst_z = z;
    }
    INFO("phi_" << k << ": " << worst << " units of 2^-53 at z = " << worst_z);
    CHECK(worst <= 4);
  }
  // e^z - 1, the coefficient the solvers take from expm1 (not z phi_1(z)): within one ulp.
  for (double z : {-2.0, -0.958, -0.5, -1e-3, 1e-3, 0.3, 0.958, 2.0}) {
    const double expected = static_cast<double>(boost::math::expm1(from_double<mp50>(z)));
    CHECK(std::abs(boost::math::expm1(z) - expected) <= std::abs(expected) * 0x1p-52);
  }
  // Known values: phi_1(0) = 1, phi_2(0) = 1/2, phi_3(0) = 1/6; phi_1(-1) = 1 - 1/e.
  CHECK(phi<double>(1, 0.0) == 1.0);
  CHECK(phi<double>(2, 0.0) == 0.5);
  CHECK(phi<double>(3, 0.0) == Approx(1.0 / 6).epsilon(1e-16));
  CHECK(std::abs(phi<double>(1, -1.0) - (1 - std::exp(-1.0))) < 1e-16);
  CHECK(abs(phi<mp50>(3, mp50("1e-30")) - mp50(1) / 6) < mp50("1e-31"));
  CHECK(abs(phi<mp50>(2, mp50("-2.5")) - (exp(mp50("-2.5")) - 1 + mp50("2.5")) / mp50("6.25")) <
        mp50("1e-48"));
}

// Rounding, not method error: each exponential integrator's double solve against the same solve
// (grid, states, data) in float128. Error per particle max |x_double - x_float128| / max(1,
// max |x|); the bounds are the measured medians and maxima with a margin. Before its e^{-h} - 1
// came from expm1 (it was -h phi_1(-h), a few ulps off in one coefficient of every step and
// particle alike), dpm-solver++-2m's median here was ~4x larger.
TEST_CASE("exponential integrators in double are within rounding of their float128 solves",
          "[samplers][float128]") {
  const json vp = {{"type", "vp-linear"}, {"beta_min", 0.1}, {"beta_max", 20.0}};
  const auto sde = make_sde<double>(vp, 2, "sde");
  const auto sde_q = make_sde<f128>(vp, 2, "sde");
  const auto data = make_target<double>(pflow::testing::headline_mixture());
  const auto data_q = make_target<f128>(pflow::testing::headline_mixture());
  const AnalyticDenoiser<double> model(*sde, data);
  const AnalyticDenoiser<f128> model_q(*sde_q, data_q);
  Rng rng(5);
  const Mat<double> x = rng.normal_matrix<double>(2, 400);
  const auto grid =
      make_time_grid<double>(*sde, pflow::testing::grid_named("logsnr"), 1.0, 1e-3, 10);
  const std::vector<f128> grid_q(grid.begin(), grid.end());
  Problem<double> problem;
  problem.sde = sde.get();
  problem.model = &model;
  Problem<f128> problem_q;
  problem_q.sde = sde_q.get();
  problem_q.model = &model_q;
  struct Bound {
    json solver;
    double median, max;
  };
  // Measured medians and maxima (this change / before it): 2m 2.2e-16, 1.6e-15 (9.8e-16,
  // 2.2e-15); 2s 3.3e-16, 2.1e-15 (9.3e-16, 2.5e-15); dpm-solver-2 4.1e-15, 1.1e-14 (2.7e-15,
  // 8.7e-15: another rounding, not identified, dominates this eps-form method, and the change
  // moved it up); dpm-solver-3 8.7e-16, 3.1e-15 (2.4e-15, 6.0e-15);
  // ddim 3.3e-16, 2.0e-15 (unchanged); UniPC bh2-3 3.5e-16, 2.9e-15 (1.1e-15, 4.1e-15); UniPC
  // bh1-2 2.7e-16, 1.4e-15 (1.2e-15, 2.4e-15).
  for (const Bound& b :
       {Bound{"dpm-solver++-2m", 3.5e-16, 2.5e-15}, Bound{"dpm-solver++-2s", 5e-16, 3e-15},
        Bound{"dpm-solver-2", 6e-15, 1.7e-14}, Bound{"dpm-solver-3", 1.3e-15, 4.5e-15},
        Bound{"ddim", 5e-16, 3e-15},
        Bound{{{"name", "unipc"}, {"order", 3}, {"variant", "bh2"}}, 5e-16, 4e-15},
        Bound{{{"name", "unipc"}, {"order", 2}, {"variant", "bh1"}}, 4e-16, 2.2e-15}}) {
    const Mat<double> a = solve(*make_solver<double>(b.solver), problem, grid, x).x;
    const Mat<double> q =
        solve(*make_solver<f128>(b.solver), problem_q, grid_q, Mat<f128>(x.cast<f128>()))
            .x.cast<double>();
    std::vector<double> errors;
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      errors.push_back((a.col(j) - q.col(j)).cwiseAbs().maxCoeff() /
                       std::max(1.0, q.col(j).cwiseAbs().maxCoeff()));
    std::sort(errors.begin(), errors.end());
    const double median = errors[errors.size() / 2], worst = errors.back();
    WARN(b.solver.dump() << ": median " << median << ", max " << worst);
    CHECK(median <= b.median);
    CHECK(worst <= b.max);
  }
}

TEST_CASE("time grids: end points exact, spacing uniform in the grid's variable", "[samplers]") {
  VpLinear<double> sde(0.1, 20.0, 2);
  const int n = 12;
  GridSpec spec;
  for (const std::string kind : {"time-uniform", "time-quadratic", "logsnr", "edm"}) {
    spec.kind = kind;
    const auto g = make_time_grid<double>(sde, spec, 1.0, 1e-3, n);
    REQUIRE(g.size() == n + 1);
    CHECK(g.front() == 1.0);
    CHECK(g.back() == 1e-3);
    for (int i = 1; i <= n; ++i) CHECK(g[i] < g[i - 1]);
    auto variable = [&](double t) {
      if (kind == "time-uniform") return t;
      if (kind == "time-quadratic") return std::sqrt(t);
      if (kind == "logsnr") return sde.lambda(t);
      return std::pow(sde.sigma(t) / sde.alpha(t), 1.0 / 7);
    };
    const double step = variable(g[1]) - variable(g[0]);
    for (int i = 1; i < n; ++i)
      CHECK(variable(g[i + 1]) - variable(g[i]) == Approx(step).epsilon(1e-10));
  }
  spec.kind = "logsnr";
  Cld<double> cld(4.0, 0.25, 0.04, 1);
  CHECK_THROWS_WITH(make_time_grid<double>(cld, spec, 1.0, 1e-3, 4),
                    Catch::Contains("time.grid = logsnr") && Catch::Contains("scalar SDEs"));
  CHECK_THROWS_WITH(make_time_grid<double>(sde, spec, 1.0, 0.0, 4),
                    Catch::Contains("time.t_end = 0"));
  CHECK_THROWS_WITH(make_time_grid<double>(sde, spec, 0.1, 0.5, 4),
                    Catch::Contains("time.t_start = 0.1"));
  spec.kind = "log-snr";
  CHECK_THROWS_WITH(make_time_grid<double>(sde, spec, 1.0, 0.1, 4),
                    Catch::Contains("did you mean 'logsnr'"));
  spec.kind = "list";
  spec.times = {0.9, 0.5, 0.6};
  CHECK_THROWS_WITH(make_time_grid<double>(sde, spec, 1.0, 0.1, 4),
                    Catch::Contains("time.times[2] = 0.6"));
}

TEST_CASE("the driver counts every model evaluation", "[samplers]") {
  const auto& p = order_problem<double>("mixture");
  const auto grid = make_time_grid<double>(*p.sde, p.grid, p.t_start, p.t_end, 10);
  const std::vector<std::pair<json, long>> expected = {{"ddim", 10},
                                                       {"dpm-solver-2", 20},
                                                       {"dpm-solver-3", 30},
                                                       {"dpm-solver++-2s", 20},
                                                       {"dpm-solver++-3m", 10},
                                                       {json{{"name", "unipc"}, {"order", 3}}, 10},
                                                       {"heun-edm", 20},
                                                       {"rk4", 40},
                                                       {"rkf78", 130},
                                                       {"dopri5", 61},
                                                       {"deis-tab-3", 10},
                                                       {"ipndm", 10}};
  for (const auto& [spec, nfe] : expected) {
    long counted = 0;
    run<double>(spec, p.problem(), grid, p.x_start, &counted);
    INFO(spec.dump());
    CHECK(counted == nfe);
  }
}

TEMPLATE_TEST_CASE("order-one members are the same map to 1e-14", "[samplers]", double, mp50) {
  using S = TestType;
  const auto& p = order_problem<S>("mixture");
  const auto grid = make_time_grid<S>(*p.sde, p.grid, p.t_start, p.t_end, 25);
  const Mat<S> ddim = run<S>("ddim", p.problem(), grid, p.x_start);
  const double tol = pflow::testing::tol<S>(1e-14, 1e-40);
  for (const json& spec :
       {json("dpm-solver-1"), json("dpm-solver++-1"), json("deis-tab-1"), json("deis-rhoab-1"),
        json("euler-edm"), json{{"name", "gddim"}, {"order", 0}}, json("paddim"),
        json{{"name", "ipndm"}, {"order", 1}},
        json{{"name", "gddim"}, {"order", 0}, {"K", "cholesky"}}}) {
    INFO(spec.dump());
    CHECK(max_diff(run<S>(spec, p.problem(), grid, p.x_start), ddim) <= tol);
  }
  // ...and not a map that ignores the model: DDIM moved the particles far from the start.
  CHECK(max_diff(ddim, p.x_start) > 0.5);
}

// The Taylor check of every multistep formula: on a model that is a polynomial of degree k - 1
// in the method's own variable (and independent of x), a method whose coefficients are exact
// integrals of the interpolating polynomial is exact; one whose coefficients only match to its
// order must still converge at order >= k. Both with the exact start, so that start-up steps do
// not hide anything.
TEMPLATE_TEST_CASE("multistep formulas on polynomial models: exact or of their declared order",
                   "[samplers]", double, mp50) {
  using S = TestType;
  using Model = PolynomialModel<S>;
  VpLinear<S> sde(ratio<S>(1, 10), S(20), 2);
  GridSpec spec;
  const Mat<S> x = init_points<S>();
  Vec<S> c0(2), c1(2), c2(2);
  c0 << decimal<S>("0.4"), decimal<S>("-0.7");
  c1 << decimal<S>("0.3"), decimal<S>("0.2");
  c2 << decimal<S>("-0.05"), decimal<S>("0.08");
  const double exact_tol = pflow::testing::tol<S>(2e-12, 1e-38);
  // expected < 0: exact; 0: not exact; otherwise the minimum global order on the model.
  auto check = [&](Model& model, json solver, double expected, double at_most = 99) {
    solver["start"] = "exact";
    Problem<S> problem;
    problem.sde = &sde;
    problem.model = &model;
    problem.exact_flow = [&model](const Mat<S>& xs, const S& s, const S& t) {
      return model.flow(xs, s, t);
    };
    std::vector<Level> levels;
    for (int steps : {64, 128, 256}) {
      const auto grid = make_time_grid<S>(sde, spec, S(1), ratio<S>(1, 1000), steps);
      Level l;
      l.steps = steps;
      l.err_max =
          max_diff(run<S>(solver, problem, grid, x), model.flow(x, grid.front(), grid.back()));
      levels.push_back(l);
    }
    INFO(solver.dump() << ": errors " << levels[0].err_max << ", " << levels[1].err_max << ", "
                       << levels[2].err_max);
    if (expected < 0) {
      for (const auto& l : levels) CHECK(l.err_max <= exact_tol);
    } else {
      const double order = fit_order(levels, 0.0, 3).order;
      INFO("order " << order);
      CHECK(levels.back().err_max > exact_tol);
      if (expected > 0) CHECK(order >= expected - 0.2);
      CHECK(order <= at_most);
    }
  };
  Model linear_x0(sde, Model::x0_in_lambda, {c0, c1});
  Model quadratic_x0(sde, Model::x0_in_lambda, {c0, c1, c2});
  // DPM-Solver++ 2M weights its first difference by -phi_1/2 instead of h phi_2: order 2.
  check(linear_x0, {{"name", "dpm-solver++-2m"}}, 2);
  check(quadratic_x0, {{"name", "dpm-solver++-3m-corrected"}}, -1);
  // The published 3M update weights the second difference by half: order 2, not 3 (README).
  check(quadratic_x0, {{"name", "dpm-solver++-3m"}}, 2, 2.2);
  for (const char* variant : {"bh1", "bh2"}) {
    check(linear_x0, {{"name", "unipc"}, {"order", 1}, {"variant", variant}}, 2);
    check(quadratic_x0, {{"name", "unipc"}, {"order", 2}, {"variant", variant}}, 3);
    check(quadratic_x0, {{"name", "unipc"}, {"order", 3}, {"variant", variant}}, -1);
  }
  Model quadratic_eps_t(sde, Model::eps_in_t, {c0, c1, c2});
  check(quadratic_eps_t, {{"name", "deis-tab-3"}}, -1);
  check(quadratic_eps_t, {{"name", "gddim"}, {"order", 2}}, -1);
  check(quadratic_eps_t, {{"name", "deis-tab-2"}}, 2);
  // rho reaches ~150 at t = 1: small coefficients keep eps of order one.
  Model quadratic_eps_rho(sde, Model::eps_in_rho, {c0, Vec<S>(c1 / 100), Vec<S>(c2 / 10000)});
  check(quadratic_eps_rho, {{"name", "deis-rhoab-3"}}, -1);
  check(quadratic_eps_rho, {{"name", "deis-tab-3"}}, 0);  // not exact: its variable is t
}

TEMPLATE_TEST_CASE(
    "paddim's data-aware form and gddim with the data covariance are exact for "
    "Gaussian data",
    "[samplers]", double, mp50) {
  using S = TestType;
  const auto& p = order_problem<S>("gaussian");
  const double tol = pflow::testing::tol<S>(1e-12, 1e-40);
  for (int steps : {1, 5}) {
    const auto grid = make_time_grid<S>(*p.sde, p.grid, p.t_start, p.t_end, steps);
    INFO(steps << " steps");
    CHECK(max_diff(run<S>(json{{"name", "paddim"}, {"form", "data"}}, p.problem(), grid, p.x_start),
                   p.reference()) <= tol);
    CHECK(max_diff(run<S>(json{{"name", "gddim"}, {"order", 0}, {"covariance", "data"}},
                          p.problem(), grid, p.x_start),
                   p.reference()) <= tol);
    // The forward-kernel forms are DDIM: not exact for Gaussian (non-Dirac) data.
    CHECK(max_diff(run<S>("paddim", p.problem(), grid, p.x_start), p.reference()) > 1e-3);
  }
}

TEST_CASE("Dirac data on a scalar SDE: DDIM and paddim are exact in one step", "[samplers]") {
  VpLinear<double> sde(0.1, 20.0, 2);
  const auto data = make_target<double>(json{{"type", "dirac"}, {"point", {0.5, -1.0}}});
  AnalyticDenoiser<double> model(sde, data);
  Problem<double> problem;
  problem.sde = &sde;
  problem.model = &model;
  const Mat<double> x = init_points<double>();
  const std::vector<double> one_step = {1.0, 1e-3};
  // x_t - alpha_t x0 = (sigma_t / sigma_s)(x_s - alpha_s x0) for a Dirac at x0.
  Vec<double> x0(2);
  x0 << 0.5, -1.0;
  const Mat<double> exact =
      ((x.colwise() - sde.alpha(1.0) * x0) * (sde.sigma(1e-3) / sde.sigma(1.0))).colwise() +
      sde.alpha(1e-3) * x0;
  for (const char* name : {"ddim", "paddim", "dpm-solver++-1"}) {
    const double err = max_diff(run<double>(name, problem, one_step, x), exact);
    INFO(name << ": " << err);
    CHECK(err <= 1e-13);  // alpha_t / alpha_s ~ 150 multiplies the round-off of x_s
  }
}

TEST_CASE("the singlestep start keeps a multistep method at its order", "[samplers]") {
  const auto& p = order_problem<double>("mixture");
  for (const char* name : {"deis-tab-3", "dpm-solver++-3m-corrected"}) {
    const json spec = {{"name", name}, {"start", "singlestep"}};
    const auto levels = convergence_levels<double>(spec, p, {128, 256, 512, 1024});
    INFO(name << ": order " << fit_order(levels, roundoff_floor(p)).order);
    CHECK(fit_order(levels, roundoff_floor(p)).order >= 2.8);
    // two start-up steps by DPM-Solver-3: 3 evaluations each instead of 1
    CHECK(levels[0].nfe == 128 + 2 * 2);
  }
  // Heun on the EDM grid (rho = 7): second order there too.
  OrderProblem<double> on_edm = p;
  on_edm.grid.kind = "edm";
  const auto heun = convergence_levels<double>("heun-edm", on_edm, {128, 256, 512});
  INFO("heun-edm on the edm grid: " << heun[0].err_max << ", " << heun[2].err_max);
  CHECK(fit_order(heun, roundoff_floor(p), 3).order == Approx(2.0).margin(0.2));
}

TEST_CASE("gDDIM on CLD: K = R is exact in one step, K = Cholesky converges at first order",
          "[samplers][cld]") {
  const auto sde = make_sde<double>(json{{"type", "cld"}}, 1);
  const auto gaussian =
      make_target<double>(json{{"type", "gaussian"}, {"mean", {0.7}}, {"cov", {{0.5}}}});
  const auto dirac = make_target<double>(json{{"type", "dirac"}, {"point", {0.7}}});
  Mat<double> x(2, 4);
  x << 0.3, 1.2, -0.8, -1.5, -1.1, 0.4, 0.9, -0.6;
  // From t = 0.5: from t = 1 the step multiplies round-off by |Psi(1e-3, 1)| ~ 5e4 (the data
  // signal in x_1 is that small), which leaves ~2e-11 in double; the mp50 case below is exact.
  const std::vector<double> one_step = {0.5, 1e-3};
  for (const auto* data : {&gaussian, &dirac}) {
    const bool is_dirac = data == &dirac;
    AnalyticDenoiser<double> model(*sde, *data);
    Problem<double> problem;
    problem.sde = sde.get();
    problem.model = &model;
    const Mat<double> exact = exact_flow_map(*sde, *data, x, 0.5, 1e-3);
    const json covariance = is_dirac ? "kernel" : "data";
    INFO((is_dirac ? "dirac" : "gaussian") << " data");
    const double r_error =
        max_diff(run<double>(json{{"name", "gddim"}, {"order", 0}, {"covariance", covariance}},
                             problem, one_step, x),
                 exact);
    INFO("R error " << r_error);
    // Dirac data: Sigma_xx(1e-3) ~ 3e-6 carries the closed form's absolute round-off, and the
    // rotation angle of R (11 rad, mostly near t = 1e-3) picks up ~2e-12 from it in double
    // (the same computation in mp50 agrees to 1e-19): a 5e-11 floor. Gaussian data: 1e-11.
    CHECK(r_error <= (is_dirac ? 5e-11 : 1e-11));
    const double chol_error = max_diff(
        run<double>(
            json{{"name", "gddim"}, {"order", 0}, {"K", "cholesky"}, {"covariance", covariance}},
            problem, one_step, x),
        exact);
    CHECK(chol_error > 1e-2);
    // paDDIM's principal axes rotate under CLD (Q != 0): not exact either.
    if (is_dirac) CHECK(max_diff(run<double>("paddim", problem, one_step, x), exact) > 1e-3);
  }
  // Convergence of the Cholesky ablation on Dirac data.
  OrderProblem<double> p;
  p.name = "cld-dirac";
  p.sde = std::shared_ptr<LinearSde<double>>(make_sde<double>(json{{"type", "cld"}}, 1));
  p.data = std::make_shared<GaussianMixture<double>>(dirac);
  p.model = std::make_shared<AnalyticDenoiser<double>>(*p.sde, *p.data);
  p.t_start = 0.5;
  p.t_end = 1e-3;
  p.grid.kind = "time-quadratic";
  p.x_start = x;
  p.set_reference(exact_flow_map(*p.sde, *p.data, x, 0.5, 1e-3));
  const auto levels = convergence_levels<double>(
      json{{"name", "gddim"}, {"order", 0}, {"K", "cholesky"}}, p, {16, 32, 64, 128, 256, 512});
  const OrderFit fit = fit_order(levels, roundoff_floor(p));
  CHECK(fit.order == Approx(1.0).margin(0.2));
  // The principal-axis factor with the same (consistent) coefficients: first order too; the
  // per-axis DDIM step of paddim is not consistent when the axes rotate: its error stays.
  const auto principal = convergence_levels<double>(
      json{{"name", "gddim"}, {"order", 0}, {"K", "principal"}}, p, {16, 32, 64, 128, 256, 512});
  CHECK(fit_order(principal, roundoff_floor(p)).order == Approx(1.0).margin(0.2));
  const auto paddim = convergence_levels<double>("paddim", p, {16, 512});
  INFO("paddim errors " << paddim[0].err_max << ", " << paddim[1].err_max);
  CHECK(paddim[1].err_max > 0.05);
  CHECK(paddim[1].err_max > 0.5 * paddim[0].err_max);
  const auto exact_levels =
      convergence_levels<double>(json{{"name", "gddim"}, {"order", 0}}, p, {4, 16});
  INFO("exact levels " << exact_levels[0].err_max << " " << exact_levels[1].err_max);
  CHECK(exact_levels[0].err_max <= 5e-11);
  CHECK(exact_levels[1].err_max <= 5e-11);
}

TEST_CASE("gDDIM on CLD in 50 digits: one step from t = 1 is exact to 1e-40", "[samplers][cld]") {
  const auto sde = make_sde<mp50>(json{{"type", "cld"}}, 1);
  const auto data =
      make_target<mp50>(json{{"type", "gaussian"}, {"mean", {0.7}}, {"cov", {{0.5}}}});
  AnalyticDenoiser<mp50> model(*sde, data);
  Problem<mp50> problem;
  problem.sde = sde.get();
  problem.model = &model;
  Mat<mp50> x(2, 2);
  x << decimal<mp50>("0.3"), decimal<mp50>("1.2"), decimal<mp50>("-1.1"), decimal<mp50>("0.4");
  const std::vector<mp50> one_step = {mp50(1), decimal<mp50>("0.001")};
  const Mat<mp50> exact = exact_flow_map(*sde, data, x, one_step[0], one_step[1]);
  CHECK(max_diff(run<mp50>(json{{"name", "gddim"}, {"order", 0}, {"covariance", "data"}}, problem,
                           one_step, x),
                 exact) <= 1e-40);
}

TEST_CASE("stochastic samplers: Euler-Maruyama has strong order 1, DDPM samples the data",
          "[samplers][stochastic]") {
  const auto& p = order_problem<double>("gaussian");
  Problem<double> problem = p.problem();
  problem.seed = 7;
  GridSpec uniform;
  uniform.kind = "time-uniform";
  const double t_end = 1e-2;
  auto em = [&](int steps) {
    return run<double>("euler-maruyama", problem,
                       make_time_grid<double>(*p.sde, uniform, 1.0, t_end, steps), p.x_start);
  };
  const Mat<double> fine = em(4096);  // the same Brownian path, 2^12 steps
  std::vector<Level> levels;
  for (int steps : {64, 128, 256, 512}) {
    Level l;
    l.steps = steps;
    l.err_max = max_diff(em(steps), fine);
    levels.push_back(l);
  }
  const OrderFit fit = fit_order(levels, 1e-13);
  INFO("strong order " << fit.order);
  CHECK(fit.order == Approx(1.0).margin(0.25));
  // Same seed, same path: bit-identical.
  CHECK(max_diff(em(64), em(64)) == 0.0);

  // DDPM (ddim, eta = 1) from prior samples reproduces N(mu, S0) within Monte-Carlo error.
  Rng rng(3);
  const int n = 4000;
  const Mat<double> prior = Marginal<double>(*p.sde, *p.data, 1.0).sample(n, rng);
  const Mat<double> samples =
      run<double>("ddpm", problem, make_time_grid<double>(*p.sde, p.grid, 1.0, 1e-3, 200), prior);
  const Vec<double> mean = samples.rowwise().mean();
  const Mat<double> centred = samples.colwise() - mean;
  const Mat<double> cov = centred * centred.transpose() / (n - 1);
  Mat<double> s0(2, 2);
  s0 << 1.0, 0.8, 0.8, 0.9;
  Vec<double> mu(2);
  mu << 0.5, -1.0;
  CHECK(max_diff(mean, mu) < 0.08);  // standard error ~0.016
  CHECK(max_diff(cov, s0) < 0.12);   // standard error ~0.03
}

TEST_CASE("bad solver specs and inapplicable solvers give clear errors", "[samplers][inputs]") {
  CHECK_THROWS_WITH(make_solver<double>(json("dpm-solver++3m")),
                    Catch::Contains("solver.name = dpm-solver++3m") &&
                        Catch::Contains("did you mean 'dpm-solver++-3m'"));
  CHECK_THROWS_WITH(make_solver<double>(json{{"name", "unipc"}, {"order", 5}}),
                    Catch::Contains("solver.order = 5") && Catch::Contains("between 1 and 3"));
  CHECK_THROWS_WITH(make_solver<double>(json{{"name", "unipc"}, {"varient", "bh1"}}),
                    Catch::Contains("solver.varient") && Catch::Contains("did you mean 'variant'"));
  CHECK_THROWS_WITH(make_solver<double>(json{{"name", "unipc"}, {"variant", "bh3"}}),
                    Catch::Contains("solver.variant = bh3"));
  CHECK_THROWS_WITH(make_solver<double>(json{{"name", "ddim"}, {"eta", 1.5}}),
                    Catch::Contains("solver.eta = 1.5"));
  CHECK_THROWS_WITH(make_solver<double>(json{{"name", "rk4"}, {"adaptive", true}}),
                    Catch::Contains("no error estimate"));
  CHECK_THROWS_WITH(make_solver<double>(json{{"name", "dopri5"}, {"tolerance", -1}}),
                    Catch::Contains("solver.tolerance = -1"));
  CHECK_THROWS_WITH(make_solver<double>(json(3)), Catch::Contains("must be a solver name"));

  // A scalar-SDE method on CLD, and abm on a grid that is not uniform in its variable.
  const auto cld = make_sde<double>(json{{"type", "cld"}}, 1);
  const auto data = make_target<double>(json{{"type", "dirac"}, {"point", {0.7}}});
  AnalyticDenoiser<double> model(*cld, data);
  Problem<double> problem;
  problem.sde = cld.get();
  problem.model = &model;
  const Mat<double> x = Mat<double>::Constant(2, 1, 0.3);
  CHECK_THROWS_WITH(run<double>("dpm-solver-2", problem, {1.0, 0.5, 0.1}, x),
                    Catch::Contains("needs a scalar SDE") && Catch::Contains("gddim"));
  CHECK_THROWS_WITH(run<double>("abm", problem, {1.0, 0.5, 0.4, 0.1}, x),
                    Catch::Contains("abm needs steps uniform"));
  CHECK_THROWS_WITH(run<double>("ddim", problem, {1.0, 1.0}, x),
                    Catch::Contains("times must decrease"));
}

TEST_CASE("a non-finite state stops the solve at the step where it appears", "[samplers]") {
  struct Broken : Denoiser<double> {
    std::string name() const override { return "broken"; }
    Mat<double> score(const Mat<double>& x, const double& t) const override {
      return Mat<double>::Constant(x.rows(), x.cols(), t < 0.35 ? std::nan("") : 0.0);
    }
  };
  VpLinear<double> sde(0.1, 20.0, 1);
  Broken model;
  Problem<double> problem;
  problem.sde = &sde;
  problem.model = &model;
  const std::vector<double> grid = {1.0, 0.8, 0.6, 0.4, 0.3, 0.2};
  CHECK_THROWS_WITH(run<double>("ddim", problem, grid, Mat<double>::Ones(1, 2)),
                    Catch::Contains("non-finite state at step 4") && Catch::Contains("t = 0.2"));
  CHECK_THROWS_WITH(run<double>("rk4", problem, grid, Mat<double>::Ones(1, 2)),
                    Catch::Contains("non-finite state at step"));
}
