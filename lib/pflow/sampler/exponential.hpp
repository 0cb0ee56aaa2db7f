// The exponential-integrator family for scalar SDEs (docs/NOTES.md sec. 4), with
// h = lambda_t - lambda_s > 0 toward the data and lambda = log(alpha / sigma):
//
//   ddim               x_t = alpha_t x0 + sqrt(sigma_t^2 - c^2) eps + c z,
//                      c = eta sigma_t sqrt(1 - e^{-2h})  (Song et al. 2021a, eq. 12 and 16;
//                      eta = 1 is DDPM's ancestral sampler, Ho et al. 2020, eq. 7)
//   dpm-solver-k       singlestep in eps, k = 1, 2 (r1 = 1/2), 3 (r1 = 1/3, r2 = 2/3)
//                      (Lu et al. 2022a, Alg. 1 and 2 / eq. 3.7, 3.8)
//   dpm-solver++-k     in x0: 1, 2s (r1 = 1/2), multistep 2m and 3m (Lu et al. 2022b, Alg. 1, 2 and
//                      the 3M update of the reference implementation, docs/NOTES.md sec. 4)
//
// Written with phi-functions so that small steps lose no digits: e^h - 1 = h phi_1(h),
// (e^h - 1)/h - 1 = h phi_2(h), and in x0 form e^{-h} - 1 = -h phi_1(-h).
#pragma once

#include <deque>

#include "pflow/sampler/phi.hpp"
#include "pflow/sampler/solver.hpp"
#include "pflow/sampler/solver_record.hpp"

namespace pflow {

// How a multistep method takes its first k - 1 steps (k = its order).
enum class Start {
  lower_order,  // orders 1, 2, ..., k - 1 from the available history (the published default)
  singlestep,   // singlestep DPM-Solver of order min(k, 3): costs extra evaluations
  exact,        // the problem's reference flow (an oracle; costs no model evaluation)
};

inline std::vector<std::string> start_names() {
  return {"lower-order", "singlestep", "exact"};
}
// The "start" parameter of every multistep method.
inline ParameterSpec start_parameter() {
  return text_parameter("start", "lower-order", start_names());
}
inline Start start_of(const SolverParams& p) {
  const std::string s = p.text("start");
  return s == "exact" ? Start::exact : s == "singlestep" ? Start::singlestep : Start::lower_order;
}

// alpha, sigma, lambda of a scalar SDE at a time.
template <class Scalar>
struct ScalarPoint {
  Scalar t, alpha, sigma, lambda;
  ScalarPoint(const ScalarSde<Scalar>& sde, const Scalar& time)
      : t(time), alpha(sde.alpha(time)), sigma(sde.sigma(time)), lambda(sde.lambda(time)) {}
};

// One singlestep DPM-Solver step of order k (1, 2, 3) from s to t in eps form, given eps_s.
template <class Scalar>
Mat<Scalar> dpm_solver_step(SolveContext<Scalar>& ctx, int k, const Mat<Scalar>& x,
                            const Mat<Scalar>& eps_s, const Scalar& s_time, const Scalar& t_time) {
  using std::exp;
  const ScalarSde<Scalar>& sde = ctx.scalar_sde();
  const ScalarPoint<Scalar> s(sde, s_time), t(sde, t_time);
  const Scalar h = t.lambda - s.lambda;
  // x_u = (alpha_u / alpha_s) x - sigma_u (e^{r h} - 1) eps_s: the first-order step to u.
  auto first_order = [&](const ScalarPoint<Scalar>& u, const Scalar& rh) -> Mat<Scalar> {
    return (u.alpha / s.alpha) * x - (u.sigma * boost::math::expm1(rh)) * eps_s;
  };
  if (k == 1) return first_order(t, h);
  if (k == 2) {
    const Scalar r1 = ratio<Scalar>(1, 2);
    const ScalarPoint<Scalar> s1(sde, sde.t_of_lambda(s.lambda + r1 * h));
    const Mat<Scalar> eps_1 = ctx.eps(first_order(s1, r1 * h), s1.t);
    return first_order(t, h) - (t.sigma / (2 * r1) * boost::math::expm1(h)) * (eps_1 - eps_s);
  }
  const Scalar r1 = ratio<Scalar>(1, 3), r2 = ratio<Scalar>(2, 3);
  const ScalarPoint<Scalar> s1(sde, sde.t_of_lambda(s.lambda + r1 * h));
  const ScalarPoint<Scalar> s2(sde, sde.t_of_lambda(s.lambda + r2 * h));
  const Mat<Scalar> d1 = ctx.eps(first_order(s1, r1 * h), s1.t) - eps_s;
  const Mat<Scalar> u2 =
      first_order(s2, r2 * h) - (s2.sigma * r2 / r1 * r2 * h * phi(2, r2 * h)) * d1;
  const Mat<Scalar> d2 = ctx.eps(u2, s2.t) - eps_s;
  return first_order(t, h) - (t.sigma / r2 * h * phi(2, h)) * d2;
}

// A start-up step of a multistep method of order k from s to t; eps_s = eps(x, s), which the
// method has already evaluated.
template <class Scalar>
Mat<Scalar> start_step(SolveContext<Scalar>& ctx, Start start, int k, const Mat<Scalar>& x,
                       const Mat<Scalar>& eps_s, const Scalar& s, const Scalar& t) {
  if (start == Start::exact) return ctx.exact_flow(x, s, t);
  return dpm_solver_step(ctx, std::min(k, 3), x, eps_s, s, t);
}

// eps from an x0 prediction at the same point: eps = (x - alpha x0) / sigma.
template <class Scalar>
Mat<Scalar> eps_from_x0(SolveContext<Scalar>& ctx, const Mat<Scalar>& x, const Mat<Scalar>& x0,
                        const Scalar& t) {
  const ScalarSde<Scalar>& sde = ctx.scalar_sde();
  return (x - sde.alpha(t) * x0) / sde.sigma(t);
}

// One DDIM step from s to t (header): x0 and eps from the model at s, z standard normal (unused
// at eta = 0). With eta = 1 on a vp-discrete chain's consecutive steps this is DDPM's posterior
// step (tests/test_discrete.cpp holds the two equal).
template <class Scalar>
Mat<Scalar> ddim_step(const ScalarPoint<Scalar>& s, const ScalarPoint<Scalar>& t, const Scalar& eta,
                      const Mat<Scalar>& x0, const Mat<Scalar>& eps, const Mat<Scalar>* z) {
  using std::sqrt;
  if (eta == 0) return t.alpha * x0 + t.sigma * eps;
  // 1 - e^{-2h} = -expm1(-2h), without cancellation for small steps.
  const Scalar h = t.lambda - s.lambda;
  const Scalar c = eta * t.sigma * sqrt(Scalar(-boost::math::expm1(Scalar(-2 * h))));
  return t.alpha * x0 + sqrt(t.sigma * t.sigma - c * c) * eps + c * *z;
}

// DDIM, eta = 0 deterministic: independent of the phi-function path (x0 and eps recombined).
template <class Scalar>
class Ddim : public Solver<Scalar> {
 public:
  Ddim(SolverInfo info, double eta)
      : Solver<Scalar>(std::move(info)), eta_(from_double<Scalar>(eta)) {}
  void run(SolveContext<Scalar>& ctx, const std::vector<Scalar>& grid,
           Mat<Scalar>& x) const override {
    using std::sqrt;
    const ScalarSde<Scalar>& sde = ctx.scalar_sde();
    for (size_t i = 0; i + 1 < grid.size(); ++i) {
      const ScalarPoint<Scalar> s(sde, grid[i]), t(sde, grid[i + 1]);
      const Mat<Scalar> eps = ctx.eps(x, s.t);
      const Mat<Scalar> x0 = (x - s.sigma * eps) / s.alpha;
      if (eta_ == 0) {
        x = ddim_step<Scalar>(s, t, eta_, x0, eps, nullptr);
      } else {
        const Mat<Scalar> z =
            ctx.brownian_increment(s.t, t.t, x.rows(), x.cols()) / sqrt(s.t - t.t);
        x = ddim_step<Scalar>(s, t, eta_, x0, eps, &z);
      }
      ctx.step_done(static_cast<int>(i), t.t, x);
    }
  }

 private:
  Scalar eta_;
};

// Singlestep DPM-Solver-k (eps form).
template <class Scalar>
class DpmSolver : public Solver<Scalar> {
 public:
  DpmSolver(SolverInfo info, int k) : Solver<Scalar>(std::move(info)), k_(k) {}
  void run(SolveContext<Scalar>& ctx, const std::vector<Scalar>& grid,
           Mat<Scalar>& x) const override {
    for (size_t i = 0; i + 1 < grid.size(); ++i) {
      x = dpm_solver_step(ctx, k_, x, ctx.eps(x, grid[i]), grid[i], grid[i + 1]);
      ctx.step_done(static_cast<int>(i), grid[i + 1], x);
    }
  }

 private:
  int k_;
};

// DPM-Solver++ in x0: "1" and "2s" are singlestep, "2m" and "3m" multistep. `corrected_3m`
// replaces the published 3M second-difference term by the one Taylor expansion gives (see
// analytic/ and the README: the published D2 is half the needed h^2 x0'' term).
template <class Scalar>
class DpmSolverPp : public Solver<Scalar> {
 public:
  DpmSolverPp(SolverInfo info, std::string variant, Start start)
      : Solver<Scalar>(std::move(info)), variant_(std::move(variant)), start_(start) {}

  void run(SolveContext<Scalar>& ctx, const std::vector<Scalar>& grid,
           Mat<Scalar>& x) const override {
    const ScalarSde<Scalar>& sde = ctx.scalar_sde();
    const int k = variant_ == "1" || variant_ == "2s" ? 1 : variant_ == "2m" ? 2 : 3;
    struct Past {
      Scalar lambda;
      Mat<Scalar> x0;
    };
    std::deque<Past> past;  // newest first
    for (size_t i = 0; i + 1 < grid.size(); ++i) {
      const ScalarPoint<Scalar> s(sde, grid[i]), t(sde, grid[i + 1]);
      const Scalar h = t.lambda - s.lambda;
      const Mat<Scalar> m0 = ctx.x0(x, s.t);
      past.push_front({s.lambda, m0});
      if (past.size() > 3) past.pop_back();
      // x_t = (sigma_t / sigma_s) x - alpha_t (e^{-h} - 1) D, D = x0 estimate on the step.
      const Scalar phi1 = boost::math::expm1(Scalar(-h));  // e^{-h} - 1
      auto update = [&](const Mat<Scalar>& d) -> Mat<Scalar> {
        return (t.sigma / s.sigma) * x - (t.alpha * phi1) * d;
      };
      const int available = static_cast<int>(past.size());
      if (variant_ == "2s") {
        const Scalar r1 = ratio<Scalar>(1, 2);
        const ScalarPoint<Scalar> s1(sde, sde.t_of_lambda(s.lambda + r1 * h));
        const Scalar phi11 = boost::math::expm1(Scalar(-r1 * h));  // e^{-r1 h} - 1
        const Mat<Scalar> u = (s1.sigma / s.sigma) * x - (s1.alpha * phi11) * m0;
        const Mat<Scalar> m1 = ctx.x0(u, s1.t);
        x = update(m0 + (1 / (2 * r1)) * (m1 - m0));
      } else if (k > 1 && available < k && start_ != Start::lower_order) {
        x = start_step(ctx, start_, k, x, eps_from_x0(ctx, x, m0, s.t), s.t, t.t);
      } else if (k == 1 || available == 1) {
        x = update(m0);
      } else if (k == 2 || available == 2) {
        // D1_0 = (m0 - m1) / r0, r0 = h_0 / h; D = m0 + D1_0 / 2 (Lu et al. 2022b, Alg. 2).
        const Scalar r0 = (s.lambda - past[1].lambda) / h;
        x = update(m0 + (m0 - past[1].x0) / (2 * r0));
      } else {
        const Scalar r0 = (s.lambda - past[1].lambda) / h;
        const Scalar r1 = (past[1].lambda - past[2].lambda) / h;
        const Mat<Scalar> d1_0 = (m0 - past[1].x0) / r0;
        const Mat<Scalar> d1_1 = (past[1].x0 - past[2].x0) / r1;
        const Mat<Scalar> d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1);
        const Mat<Scalar> d2 = (d1_0 - d1_1) / (r0 + r1);
        // The reference code's phi2 = phi1/h + 1 = h phi_2(-h) and phi3 = phi2/h - 1/2 =
        // -h phi_3(-h); x_t = update(m0) + alpha_t phi2 D1 - alpha_t phi3 D2.
        const Scalar phi2 = h * phi(2, Scalar(-h));
        const Scalar phi3 = -h * phi(3, Scalar(-h));
        const Scalar d2_weight = variant_ == "3m-corrected" ? Scalar(2) : Scalar(1);
        x = update(m0) + (t.alpha * phi2) * d1 - (t.alpha * phi3 * d2_weight) * d2;
      }
      ctx.step_done(static_cast<int>(i), t.t, x);
    }
  }

 private:
  std::string variant_;
  Start start_;
};

// The records of this file's solvers (solver_record.hpp).
template <class Scalar>
void add_exponential_solvers(SolverTable<Scalar>& table) {
  auto scalar_only = [](int order, int evals) {
    return [order, evals](const SolverParams&) {
      SolverTraits t;
      t.order = order;
      t.evals_per_step = evals;
      t.scalar_sde_only = true;
      return t;
    };
  };
  {
    SolverRecord<Scalar> r;
    r.name = "ddim";
    r.family = "exponential";
    r.reference = "Song et al. 2021a, eq. 12 (eta > 0: eq. 16, stochastic)";
    r.parameters = {number_parameter("eta", 0.0, 0.0, 1.0)};
    r.traits = [](const SolverParams& p) {
      SolverTraits t;
      t.scalar_sde_only = true;
      t.stochastic = p.number("eta") > 0;
      t.weak_order = t.stochastic ? 1 : 0;
      return t;
    };
    r.order_tests = {{"ddim", scalar_order_problems()}};
    r.make = [](const SolverParams& p, SolverInfo info) {
      return std::make_unique<Ddim<Scalar>>(std::move(info), p.number("eta"));
    };
    table.push_back(std::move(r));
  }
  {
    SolverRecord<Scalar> r;
    r.name = "ddpm";
    r.family = "stochastic";
    r.reference = "Ho et al. 2020, Alg. 2 (= ddim with eta = 1)";
    r.traits = [](const SolverParams&) {
      SolverTraits t;
      t.scalar_sde_only = t.stochastic = true;
      t.weak_order = 1;
      return t;
    };
    r.order_test_exempt =
        "stochastic: strong and weak orders in the [stochastic] tests and kind \"stochastic\"";
    r.make = [](const SolverParams&, SolverInfo info) {
      return std::make_unique<Ddim<Scalar>>(std::move(info), 1.0);
    };
    table.push_back(std::move(r));
  }
  const char* singlestep[] = {"Lu et al. 2022a, eq. 3.7 (= DDIM)",
                              "Lu et al. 2022a, Alg. 1 (r1 = 1/2)",
                              "Lu et al. 2022a, Alg. 2 (r1 = 1/3, r2 = 2/3)"};
  for (int k = 1; k <= 3; ++k) {
    SolverRecord<Scalar> r;
    r.name = "dpm-solver-" + std::to_string(k);
    r.family = "exponential";
    r.reference = singlestep[k - 1];
    r.traits = scalar_only(k, k);
    r.order_tests = {{r.name, scalar_order_problems()}};
    r.make = [k](const SolverParams&, SolverInfo info) {
      return std::make_unique<DpmSolver<Scalar>>(std::move(info), k);
    };
    table.push_back(std::move(r));
  }
  struct PlusPlus {
    const char* variant;
    int order, evals;
    bool multistep;
    const char* reference;
    const char* note;
  };
  const PlusPlus variants[] = {
      {"1", 1, 1, false, "Lu et al. 2022b, eq. 9 (= DDIM)", ""},
      {"2s", 2, 2, false, "Lu et al. 2022b, Alg. 1 (r1 = 1/2)", ""},
      {"2m", 2, 1, true, "Lu et al. 2022b, Alg. 2", ""},
      // The published 3M update is second order: its D2 is half the h^2 x0'' term a Taylor
      // expansion needs (analytic/multistep_taylor.py). Declared as measured.
      {"3m", 2, 1, true, "Lu et al. 2022b, 3M update of the reference implementation",
       "(published as 3; README)"},
      {"3m-corrected", 3, 1, true, "3M with the D2 term Taylor expansion gives (README)", ""},
  };
  for (const PlusPlus& v : variants) {
    SolverRecord<Scalar> r;
    r.name = std::string("dpm-solver++-") + v.variant;
    r.family = v.multistep ? "multistep" : "exponential";
    r.reference = v.reference;
    r.order_note = v.note;
    if (v.multistep) r.parameters = {start_parameter()};
    r.traits = scalar_only(v.order, v.evals);
    nlohmann::json spec = r.name;
    if (v.multistep) spec = {{"name", r.name}, {"start", "exact"}};
    r.order_tests = {{spec, scalar_order_problems()}};
    if (std::string(v.variant) == "3m") r.order_tests[0].order_at_most = 2.2;
    const std::string variant = v.variant;
    const bool multistep = v.multistep;
    r.make = [variant, multistep](const SolverParams& p, SolverInfo info) {
      return std::make_unique<DpmSolverPp<Scalar>>(std::move(info), variant,
                                                   multistep ? start_of(p) : Start::lower_order);
    };
    table.push_back(std::move(r));
  }
}

}  // namespace pflow
