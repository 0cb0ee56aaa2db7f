// UniPC (Zhao et al. 2023): the multistep predictor UniP-p and the corrector UniC, in the data
// (x0) form with B(h) = h ("bh1") or e^h - 1 ("bh2") (Zhao et al. 2023, Alg. 2 and 3, eq. 5-8).
// With the corrector the order is p + 1 (their Theorem 3.1); the corrector's model evaluation at
// the predicted state is reused by the next step, so the NFE stays one per step; the last step
// is not corrected (it would cost an evaluation that nothing uses).
//
// With hh = -h: b_i = hh phi_{i+1}(hh) i! / B(h), R_{i,m} = r_m^{i-1} (r_m = (lambda_m -
// lambda_s)/h for the past points, 1 for t); the predictor solves the leading (p-1)x(p-1)
// system (p = 2: rho = 1/2), the corrector the full p x p one (p = 1: rho = 1/2).
#pragma once

#include <Eigen/LU>

#include "pflow/sampler/exponential.hpp"

namespace pflow {

template <class Scalar>
class UniPc : public Solver<Scalar> {
 public:
  UniPc(SolverInfo info, int p, bool bh2, bool corrector, Start start)
      : Solver<Scalar>(std::move(info)), p_(p), bh2_(bh2), corrector_(corrector), start_(start) {}

  void run(SolveContext<Scalar>& ctx, const std::vector<Scalar>& grid,
           Mat<Scalar>& x) const override {
    const ScalarSde<Scalar>& sde = ctx.scalar_sde();
    struct Past {
      Scalar lambda;
      Mat<Scalar> x0;
    };
    std::deque<Past> past;  // newest first
    const size_t steps = grid.size() - 1;
    Mat<Scalar> m_next = ctx.x0(x, grid[0]);
    for (size_t i = 0; i < steps; ++i) {
      const ScalarPoint<Scalar> s(sde, grid[i]), t(sde, grid[i + 1]);
      const bool last = i + 1 == steps;
      past.push_front({s.lambda, m_next});
      while (static_cast<int>(past.size()) > p_) past.pop_back();
      const int p = static_cast<int>(past.size());
      if (p < p_ && start_ != Start::lower_order) {
        x = start_step(ctx, start_, p_ + (corrector_ ? 1 : 0), x,
                       eps_from_x0(ctx, x, past[0].x0, s.t), s.t, t.t);
        if (!last) m_next = ctx.x0(x, t.t);
        ctx.step_done(static_cast<int>(i), t.t, x);
        continue;
      }
      const Scalar h = t.lambda - s.lambda, hh = -h;
      const Mat<Scalar>& m0 = past[0].x0;
      // Ratios r_m and scaled differences D1_m = (x0_m - x0_s) / r_m of the past points.
      Vec<Scalar> rks(p);
      std::vector<Mat<Scalar>> d1s;
      for (int m = 1; m < p; ++m) {
        rks(m - 1) = (past[m].lambda - s.lambda) / h;
        d1s.push_back((past[m].x0 - m0) / rks(m - 1));
      }
      rks(p - 1) = 1;
      const Scalar b_h = bh2_ ? Scalar(boost::math::expm1(hh)) : hh;  // e^{hh} - 1 or hh
      Mat<Scalar> r(p, p);
      Vec<Scalar> b(p);
      Scalar factorial = 1;
      for (int row = 1; row <= p; ++row) {
        factorial *= row;
        for (int col = 0; col < p; ++col) r(row - 1, col) = pow_int(rks(col), row - 1);
        b(row - 1) = hh * phi(row + 1, hh) * factorial / b_h;
      }
      const Mat<Scalar> base = (t.sigma / s.sigma) * x - (t.alpha * boost::math::expm1(hh)) * m0;
      Mat<Scalar> predicted = base;
      if (p >= 2) {
        Vec<Scalar> rhos_p(p - 1);
        if (p == 2) {
          rhos_p(0) = ratio<Scalar>(1, 2);
        } else {
          rhos_p = r.topLeftCorner(p - 1, p - 1).fullPivLu().solve(b.head(p - 1));
        }
        for (int m = 0; m < p - 1; ++m) predicted -= (t.alpha * b_h * rhos_p(m)) * d1s[m];
      }
      if (corrector_ && !last) {
        Vec<Scalar> rhos_c(p);
        if (p == 1) {
          rhos_c(0) = ratio<Scalar>(1, 2);
        } else {
          rhos_c = r.fullPivLu().solve(b);
        }
        m_next = ctx.x0(predicted, t.t);
        Mat<Scalar> corrected = base;
        for (int m = 0; m < p - 1; ++m) corrected -= (t.alpha * b_h * rhos_c(m)) * d1s[m];
        x = corrected - (t.alpha * b_h * rhos_c(p - 1)) * (m_next - m0);
      } else {
        x = predicted;
        if (!last) m_next = ctx.x0(x, t.t);
      }
      ctx.step_done(static_cast<int>(i), t.t, x);
    }
  }

 private:
  static Scalar pow_int(const Scalar& v, int e) {
    Scalar out = 1;
    for (int k = 0; k < e; ++k) out *= v;
    return out;
  }
  int p_;
  bool bh2_, corrector_;
  Start start_;
};

// The record of UniPC (solver_record.hpp).
template <class Scalar>
void add_unipc_solvers(SolverTable<Scalar>& table) {
  SolverRecord<Scalar> r;
  r.name = "unipc";
  r.family = "multistep";
  r.reference = "Zhao et al. 2023, Alg. 2-3";
  r.parameters = {text_parameter("variant", "bh2", {"bh1", "bh2"}),
                  integer_parameter("order", 2, 1, 3), boolean_parameter("corrector", true),
                  start_parameter()};
  r.order_note = "(order + 1 with the corrector, order without)";
  r.traits = [](const SolverParams& p) {
    SolverTraits t;
    t.order = p.integer("order") + (p.boolean("corrector") ? 1 : 0);
    t.scalar_sde_only = true;
    return t;
  };
  for (const char* variant : {"bh1", "bh2"})
    for (int order = 1; order <= 3; ++order)
      r.order_tests.push_back(
          {{{"name", "unipc"}, {"variant", variant}, {"order", order}, {"start", "exact"}},
           scalar_order_problems()});
  r.make = [](const SolverParams& p, SolverInfo info) {
    return std::make_unique<UniPc<Scalar>>(std::move(info), p.integer("order"),
                                           p.text("variant") == "bh2", p.boolean("corrector"),
                                           start_of(p));
  };
  table.push_back(std::move(r));
}

}  // namespace pflow
