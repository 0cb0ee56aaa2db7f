// Multistep samplers that extrapolate eps with polynomials, and the EDM samplers
// (docs/NOTES.md sec. 4). All work on scalar SDEs with y = x / alpha, rho = sigma / alpha =
// e^{-lambda}, in which the PF-ODE reads dy/drho = eps (Zhang & Chen 2023, eq. 13; Karras et al.
// 2022, eq. 4).
//
//   deis-tab-k    eps extrapolated by the Lagrange polynomial in t through the last k points;
//                 x_t = (alpha_t/alpha_s) x_s + sum_j C_j eps_j,
//                 C_j = -alpha_t int_{lambda_s}^{lambda_t} e^{-lambda} l_j(t(lambda)) dlambda
//                 (Zhang & Chen 2023, eq. 15), by Gauss-Legendre in lambda
//   deis-rhoab-k  the same in rho: y_t = y_s + sum_j eps_j int l_j(rho) drho (exact rule)
//   ipndm         y_t = y_s + (rho_t - rho_s) sum_j w_j eps_j with the fixed Adams-Bashforth
//                 weights 1; 3/2,-1/2; (23,-16,5)/12; (55,-59,37,-9)/24 (Zhang & Chen 2023,
//                 App. B), lower orders for the first steps
//   euler-edm     y_t = y_s + (rho_t - rho_s) eps_s (Karras et al. 2022, Alg. 1 without the
//                 second-order correction; the same map as DDIM)
//   heun-edm      Heun's method in (y, rho) (Karras et al. 2022, Alg. 1)
// k = 1 of both DEIS variants is DDIM.
#pragma once

#include "pflow/sampler/exponential.hpp"
#include "pflow/sde/kernel_numeric.hpp"

namespace pflow {

// l_j(x) = prod_{m != j} (x - nodes_m) / (nodes_j - nodes_m).
template <class Scalar>
Scalar lagrange_basis(const std::vector<Scalar>& nodes, size_t j, const Scalar& x) {
  Scalar value = 1;
  for (size_t m = 0; m < nodes.size(); ++m)
    if (m != j) value *= (x - nodes[m]) / (nodes[j] - nodes[m]);
  return value;
}

// Gauss-Legendre rule on [-1, 1] with enough nodes for the working precision: the integrands
// (e^{-lambda} times a polynomial in t(lambda)) are analytic in a strip around the step, so the
// error falls geometrically; 24 nodes reach double round-off for steps up to |h| ~ 3, 64 the
// 50-digit one.
template <class Scalar>
const std::pair<std::vector<Scalar>, std::vector<Scalar>>& step_quadrature() {
  static const auto rule = gauss_legendre<Scalar>(ScalarTraits<Scalar>::step_quadrature_nodes);
  return rule;
}

template <class Scalar>
struct EpsHistory {
  struct Entry {
    Scalar t;
    Mat<Scalar> eps;
  };
  std::deque<Entry> entries;  // newest first
  void push(const Scalar& t, Mat<Scalar> eps, size_t keep) {
    entries.push_front({t, std::move(eps)});
    while (entries.size() > keep) entries.pop_back();
  }
};

// deis-tab-k ("t") and deis-rhoab-k ("rho").
template <class Scalar>
class Deis : public Solver<Scalar> {
 public:
  Deis(SolverInfo info, bool in_rho, int k, Start start)
      : Solver<Scalar>(std::move(info)), in_rho_(in_rho), k_(k), start_(start) {}

  void run(SolveContext<Scalar>& ctx, const std::vector<Scalar>& grid,
           Mat<Scalar>& x) const override {
    using std::exp;
    const ScalarSde<Scalar>& sde = ctx.scalar_sde();
    EpsHistory<Scalar> history;
    const auto& [gl_nodes, gl_weights] = step_quadrature<Scalar>();
    for (size_t i = 0; i + 1 < grid.size(); ++i) {
      const ScalarPoint<Scalar> s(sde, grid[i]), t(sde, grid[i + 1]);
      history.push(s.t, ctx.eps(x, s.t), k_);
      const size_t q = history.entries.size();
      if (static_cast<int>(q) < k_ && start_ != Start::lower_order) {
        x = start_step(ctx, start_, k_, x, history.entries[0].eps, s.t, t.t);
        ctx.step_done(static_cast<int>(i), t.t, x);
        continue;
      }
      // Interpolation nodes in the method's variable: t, or rho = e^{-lambda}.
      std::vector<Scalar> nodes(q);
      for (size_t j = 0; j < q; ++j) {
        const Scalar tj = history.entries[j].t;
        nodes[j] = in_rho_ ? Scalar(exp(-sde.lambda(tj))) : tj;
      }
      if (in_rho_) {
        // y_t = y_s + sum_j eps_j int_{rho_s}^{rho_t} l_j; the rule is exact for degree < 48.
        const Scalar rho_s = s.sigma / s.alpha, rho_t = t.sigma / t.alpha;
        Mat<Scalar> y = x / s.alpha;
        for (size_t j = 0; j < q; ++j) {
          Scalar c = 0;
          for (size_t n = 0; n < gl_nodes.size(); ++n) {
            const Scalar r = (rho_s + rho_t) / 2 + (rho_t - rho_s) / 2 * gl_nodes[n];
            c += gl_weights[n] * lagrange_basis(nodes, j, r);
          }
          y += (c * (rho_t - rho_s) / 2) * history.entries[j].eps;
        }
        x = t.alpha * y;
      } else {
        Mat<Scalar> next = (t.alpha / s.alpha) * x;
        const Scalar half = (t.lambda - s.lambda) / 2, mid = (t.lambda + s.lambda) / 2;
        for (size_t j = 0; j < q; ++j) {
          Scalar c = 0;
          for (size_t n = 0; n < gl_nodes.size(); ++n) {
            const Scalar lam = mid + half * gl_nodes[n];
            c += gl_weights[n] * exp(-lam) * lagrange_basis(nodes, j, sde.t_of_lambda(lam));
          }
          next -= (t.alpha * half * c) * history.entries[j].eps;
        }
        x = next;
      }
      ctx.step_done(static_cast<int>(i), t.t, x);
    }
  }

 private:
  bool in_rho_;
  int k_;
  Start start_;
};

template <class Scalar>
class Ipndm : public Solver<Scalar> {
 public:
  Ipndm(SolverInfo info, int k) : Solver<Scalar>(std::move(info)), k_(k) {}
  void run(SolveContext<Scalar>& ctx, const std::vector<Scalar>& grid,
           Mat<Scalar>& x) const override {
    static const long weights[4][4] = {
        {1, 0, 0, 0}, {3, -1, 0, 0}, {23, -16, 5, 0}, {55, -59, 37, -9}};
    static const long denominators[4] = {1, 2, 12, 24};
    const ScalarSde<Scalar>& sde = ctx.scalar_sde();
    EpsHistory<Scalar> history;
    for (size_t i = 0; i + 1 < grid.size(); ++i) {
      const ScalarPoint<Scalar> s(sde, grid[i]), t(sde, grid[i + 1]);
      history.push(s.t, ctx.eps(x, s.t), k_);
      const size_t q = history.entries.size();
      Mat<Scalar> combined = Mat<Scalar>::Zero(x.rows(), x.cols());
      for (size_t j = 0; j < q; ++j)
        combined += ratio<Scalar>(weights[q - 1][j], denominators[q - 1]) * history.entries[j].eps;
      x = t.alpha * (x / s.alpha + (t.sigma / t.alpha - s.sigma / s.alpha) * combined);
      ctx.step_done(static_cast<int>(i), t.t, x);
    }
  }

 private:
  int k_;
};

// Euler (heun = false) and Heun (heun = true) in (y, rho).
template <class Scalar>
class EdmSampler : public Solver<Scalar> {
 public:
  EdmSampler(SolverInfo info, bool heun) : Solver<Scalar>(std::move(info)), heun_(heun) {}
  void run(SolveContext<Scalar>& ctx, const std::vector<Scalar>& grid,
           Mat<Scalar>& x) const override {
    const ScalarSde<Scalar>& sde = ctx.scalar_sde();
    for (size_t i = 0; i + 1 < grid.size(); ++i) {
      const ScalarPoint<Scalar> s(sde, grid[i]), t(sde, grid[i + 1]);
      const Scalar d_rho = t.sigma / t.alpha - s.sigma / s.alpha;
      const Mat<Scalar> y = x / s.alpha;
      const Mat<Scalar> slope = ctx.eps(x, s.t);
      Mat<Scalar> y_next = y + d_rho * slope;
      if (heun_) y_next = y + (d_rho / 2) * (slope + ctx.eps(t.alpha * y_next, t.t));
      x = t.alpha * y_next;
      ctx.step_done(static_cast<int>(i), t.t, x);
    }
  }

 private:
  bool heun_;
};

// The records of this file's solvers (solver_record.hpp).
template <class Scalar>
void add_deis_solvers(SolverTable<Scalar>& table) {
  for (const bool in_rho : {false, true}) {
    for (int k = 1; k <= 3; ++k) {
      SolverRecord<Scalar> r;
      r.name = std::string(in_rho ? "deis-rhoab-" : "deis-tab-") + std::to_string(k);
      r.family = "multistep";
      r.reference = std::string("Zhang & Chen 2023, eq. ") + (in_rho ? "16" : "15") +
                    (k == 1 ? " (= DDIM)" : "");
      r.parameters = {start_parameter()};
      r.traits = [k](const SolverParams&) {
        SolverTraits t;
        t.order = k;
        t.scalar_sde_only = true;
        return t;
      };
      r.order_tests = {{{{"name", r.name}, {"start", "exact"}}, scalar_order_problems()}};
      r.make = [in_rho, k](const SolverParams& p, SolverInfo info) {
        return std::make_unique<Deis<Scalar>>(std::move(info), in_rho, k, start_of(p));
      };
      table.push_back(std::move(r));
    }
  }
  {
    SolverRecord<Scalar> r;
    r.name = "ipndm";
    r.family = "multistep";
    r.reference = "Zhang & Chen 2023, App. B";
    r.parameters = {integer_parameter("order", 4, 1, 4)};
    // Fixed Adams-Bashforth weights: order min(k, 2) on variable steps (README).
    r.order_note = "(min(order, 2); order on steps uniform in rho)";
    r.traits = [](const SolverParams& p) {
      SolverTraits t;
      t.order = std::min(p.integer("order"), 2);
      t.scalar_sde_only = true;
      return t;
    };
    r.order_tests = {{"ipndm", scalar_order_problems()}};
    r.make = [](const SolverParams& p, SolverInfo info) {
      return std::make_unique<Ipndm<Scalar>>(std::move(info), p.integer("order"));
    };
    table.push_back(std::move(r));
  }
  for (const bool heun : {false, true}) {
    SolverRecord<Scalar> r;
    r.name = heun ? "heun-edm" : "euler-edm";
    r.family = "exponential";
    r.reference =
        heun ? "Karras et al. 2022, Alg. 1" : "Karras et al. 2022, Alg. 1 (Euler only; = DDIM)";
    r.traits = [heun](const SolverParams&) {
      SolverTraits t;
      t.order = t.evals_per_step = heun ? 2 : 1;
      t.scalar_sde_only = true;
      return t;
    };
    r.order_tests = {{r.name, scalar_order_problems()}};
    r.make = [heun](const SolverParams&, SolverInfo info) {
      return std::make_unique<EdmSampler<Scalar>>(std::move(info), heun);
    };
    table.push_back(std::move(r));
  }
}

}  // namespace pflow
