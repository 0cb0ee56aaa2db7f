// Generic Boost.Odeint solvers on the probability-flow ODE dx/dt = F x - D grad log p_t(x)
// (docs/NOTES.md sec. 2 and 4), for any linear SDE. The batch of particles is one flattened state,
// so one right-hand side is one model evaluation.
//
// The integration variable is t, or for scalar SDEs lambda = log(alpha/sigma), in which
// dx/dlambda = (dx/dt) / (dlambda/dt) and dlambda/dt = -g^2 / (2 sigma^2). Odeint runs forwards
// in tau = -t (or tau = lambda) when sampling, tau = t (or -lambda) when encoding: Boost 1.74's
// controlled steppers handle negative steps badly.
//
// Fixed-step (on the grid): euler (order 1), rk4 (4), cash-karp54 (5), dopri5 (5), rkf78 (8),
// abm (Adams-Bashforth-Moulton, 4 steps, order 4; needs steps uniform in its variable).
// Adaptive (tolerance, abs = rel): cash-karp54, dopri5, rkf78, bulirsch-stoer.
#pragma once

#include "pflow/core/odeint.hpp"
#include "pflow/sampler/solver.hpp"
#include "pflow/sampler/solver_record.hpp"

namespace pflow {

// Integrates d(state)/d(tau) = system(state, dstate, tau) with the Boost.Odeint `method`: in
// fixed steps over the points `taus` (increasing), on_step(i) after step i; or adaptively from
// taus.front() to taus.back() at absolute = relative tolerance `tolerance`, on_step(steps - 1)
// once at the end. Returns the steps taken. Shared by the odeint samplers and the likelihood.
template <class Scalar, class System, class OnStep>
int odeint_integrate(const std::string& method, bool adaptive, const Scalar& tolerance,
                     System& system, Vec<Scalar>& state, const std::vector<Scalar>& taus,
                     OnStep&& on_step) {
  using State = Vec<Scalar>;
  using Algebra = odeint::vector_space_algebra;
  if (adaptive) {
    const Scalar tau0 = taus.front(), tau1 = taus.back(), dt0 = (tau1 - tau0) / 64;
    size_t steps = 0;
    // The error-controlled Runge-Kutta pairs share one driver; abs = rel tolerance.
    auto controlled = [&](auto stepper) {
      return odeint::integrate_adaptive(odeint::make_controlled(tolerance, tolerance, stepper),
                                        std::ref(system), state, tau0, tau1, dt0);
    };
    if (method == "cash-karp54") {
      steps = controlled(odeint::runge_kutta_cash_karp54<State, Scalar, State, Scalar, Algebra>());
    } else if (method == "dopri5") {
      steps = controlled(odeint::runge_kutta_dopri5<State, Scalar, State, Scalar, Algebra>());
    } else if (method == "rkf78") {
      steps = controlled(odeint::runge_kutta_fehlberg78<State, Scalar, State, Scalar, Algebra>());
    } else if (method == "bulirsch-stoer") {
      BulirschStoer<Scalar> stepper(tolerance, tolerance);
      steps = odeint::integrate_adaptive(stepper, std::ref(system), state, tau0, tau1, dt0);
    } else {
      throw InputError("solver", method, "has no adaptive form (set \"adaptive\": false)");
    }
    on_step(static_cast<int>(steps) - 1);
    return static_cast<int>(steps);
  }
  auto march = [&](auto stepper) {
    for (size_t i = 0; i + 1 < taus.size(); ++i) {
      stepper.do_step(std::ref(system), state, taus[i], Scalar(taus[i + 1] - taus[i]));
      on_step(static_cast<int>(i));
    }
  };
  if (method == "euler") {
    march(odeint::euler<State, Scalar, State, Scalar, Algebra>());
  } else if (method == "rk4") {
    march(odeint::runge_kutta4<State, Scalar, State, Scalar, Algebra>());
  } else if (method == "cash-karp54") {
    march(odeint::runge_kutta_cash_karp54<State, Scalar, State, Scalar, Algebra>());
  } else if (method == "dopri5") {
    march(odeint::runge_kutta_dopri5<State, Scalar, State, Scalar, Algebra>());
  } else if (method == "rkf78") {
    march(odeint::runge_kutta_fehlberg78<State, Scalar, State, Scalar, Algebra>());
  } else if (method == "abm") {
    using std::abs;
    const Scalar step = taus[1] - taus[0];
    for (size_t i = 1; i + 1 < taus.size(); ++i)
      require(abs(Scalar(taus[i + 1] - taus[i] - step)) <= abs(step) * Scalar(1e-9), "grid",
              "uneven steps",
              "abm needs steps uniform in its variable: use time-uniform with variable t, or "
              "logsnr with variable lambda");
    march(odeint::adams_bashforth_moulton<4, State, Scalar, State, Scalar, Algebra>());
  } else {
    throw InputError("solver", method, "has no fixed-step form (set \"adaptive\": true)");
  }
  return static_cast<int>(taus.size()) - 1;
}

template <class Scalar>
class OdeintSolver : public Solver<Scalar> {
 public:
  OdeintSolver(SolverInfo info, std::string method, bool adaptive, double tolerance, bool in_lambda)
      : Solver<Scalar>(std::move(info)),
        method_(std::move(method)),
        adaptive_(adaptive),
        tolerance_(from_double<Scalar>(tolerance)),
        in_lambda_(in_lambda) {}

  // What it integrates with (the likelihood runs the same stepper on its augmented ODE).
  const std::string& method() const { return method_; }
  bool adaptive() const { return adaptive_; }
  const Scalar& tolerance() const { return tolerance_; }
  bool in_lambda() const { return in_lambda_; }

  void run(SolveContext<Scalar>& ctx, const std::vector<Scalar>& grid,
           Mat<Scalar>& x) const override {
    using State = Vec<Scalar>;
    const LinearSde<Scalar>& sde = ctx.sde();
    const Eigen::Index rows = x.rows(), cols = x.cols();
    const ScalarSde<Scalar>* scalar = in_lambda_ ? &ctx.scalar_sde() : nullptr;
    // Odeint runs forwards in tau = sign v, v = t or lambda, the sign making tau increase along
    // the grid: tau = -t or lambda when sampling (t decreasing), t or -lambda when encoding.
    const Scalar v_first = scalar ? scalar->lambda(grid.front()) : grid.front();
    const Scalar v_last = scalar ? scalar->lambda(grid.back()) : grid.back();
    const Scalar sign = v_last > v_first ? Scalar(1) : Scalar(-1);
    auto system = [&](const State& state, State& dxdtau, const Scalar tau) {
      const Scalar v = sign * tau;
      const Scalar t = scalar ? scalar->t_of_lambda(v) : v;
      const Mat<Scalar> xs = Eigen::Map<const Mat<Scalar>>(state.data(), rows, cols);
      const Mat<Scalar> score = ctx.score(xs, t);
      Mat<Scalar> dxdt = sde.apply(sde.drift(t), xs) -
                         sde.apply(sde.diffusion(t).scaled(ratio<Scalar>(1, 2)), score);
      if (scalar) {
        const Scalar sigma = scalar->sigma(t);
        dxdt *= -2 * sigma * sigma / scalar->g2(t);  // dt/dlambda = -2 sigma^2 / g^2
      }
      dxdtau = sign * Eigen::Map<const State>(dxdt.data(), dxdt.size());  // dv/dtau = sign
    };
    std::vector<Scalar> taus(grid.size());
    for (size_t i = 0; i < grid.size(); ++i)
      taus[i] = sign * (scalar ? scalar->lambda(grid[i]) : grid[i]);
    State state = Eigen::Map<const State>(x.data(), x.size());
    odeint_integrate(method_, adaptive_, tolerance_, system, state, taus, [&](int step) {
      if (adaptive_) {
        ctx.add_steps(step);
        ctx.step_done(step, grid.back(), state);
      } else {
        ctx.step_done(step, grid[step + 1], state);
      }
    });
    x = Eigen::Map<const Mat<Scalar>>(state.data(), rows, cols);
  }

 private:
  std::string method_;
  bool adaptive_;
  Scalar tolerance_;
  bool in_lambda_;
};

// The records of the Boost.Odeint steppers (solver_record.hpp).
template <class Scalar>
void add_odeint_solvers(SolverTable<Scalar>& table) {
  struct Stepper {
    const char* name;
    int order, evals;  // as fixed-step methods
    bool error_estimate, adaptive_only;
    const char* reference;
  };
  const Stepper steppers[] = {
      {"euler", 1, 1, false, false, "Boost.Odeint euler"},
      {"rk4", 4, 4, false, false, "Boost.Odeint runge_kutta4"},
      {"cash-karp54", 5, 6, true, false, "Cash & Karp 1990; Boost.Odeint"},
      {"dopri5", 5, 6, true, false, "Dormand & Prince 1980; Boost.Odeint"},
      {"rkf78", 8, 13, true, false, "Fehlberg 1968; Boost.Odeint"},
      {"abm", 4, 1, false, false, "Adams-Bashforth-Moulton, 4 steps; Boost.Odeint"},
      {"bulirsch-stoer", 0, 0, true, true, "Bulirsch & Stoer 1966; Boost.Odeint"},
  };
  for (const Stepper& s : steppers) {
    SolverRecord<Scalar> r;
    const std::string name = s.name;
    r.name = name;
    r.family = "odeint";
    r.reference = s.reference;
    r.parameters = {boolean_parameter("adaptive", s.adaptive_only),
                    number_parameter("tolerance", 1e-8, 0.0, 1.0, true),
                    text_parameter("variable", "t", {"t", "lambda"})};
    if (s.adaptive_only) r.order_note = "(adaptive only: no fixed-step order)";
    if (name == "abm") r.order_note = "(steps uniform in its variable)";
    r.traits = [s, name](const SolverParams& p) {
      SolverTraits t;
      t.adaptive = p.boolean("adaptive");
      t.order = t.adaptive ? 0 : s.order;
      t.evals_per_step = t.adaptive ? 0 : s.evals;
      // lambda = log(alpha / sigma) exists for scalar SDEs only.
      const bool in_lambda = p.text("variable") == "lambda";
      t.scalar_sde_only = in_lambda;
      // Adams weights assume equal steps in the variable integrated in.
      if (name == "abm") t.uniform_grid = in_lambda ? "logsnr" : "time-uniform";
      return t;
    };
    r.check = [s, name](const SolverParams& p) {
      const bool adaptive = p.boolean("adaptive");
      require(adaptive || !s.adaptive_only, p.at("adaptive"), "false", name + " is adaptive only");
      require(!adaptive || s.error_estimate, p.at("adaptive"), "true",
              name + " has no error estimate; use cash-karp54, dopri5, rkf78 or bulirsch-stoer");
    };
    if (s.adaptive_only)
      r.order_test_exempt = "adaptive only: held to its tolerance by the [orders] tolerance test";
    else if (name == "abm")
      r.order_tests = {{{{"name", "abm"}, {"variable", "lambda"}}, scalar_order_problems()}};
    else
      r.order_tests = {{r.name, name == "cash-karp54" || name == "rkf78"
                                    ? scalar_order_problems()
                                    : std::vector<std::string>{"gaussian", "mixture", "cld"}}};
    r.make = [name](const SolverParams& p, SolverInfo info) {
      const bool adaptive = info.adaptive;
      return std::make_unique<OdeintSolver<Scalar>>(
          std::move(info), name, adaptive, p.number("tolerance"), p.text("variable") == "lambda");
    };
    table.push_back(std::move(r));
  }
}

}  // namespace pflow
