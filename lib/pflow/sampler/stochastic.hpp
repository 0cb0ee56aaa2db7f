// Euler-Maruyama on the reverse-time SDE dx = [F x - G G^T grad log p_t(x)] dt + G dw_bar
// (Anderson 1982; Song et al. 2021, eq. 6), stepping from s to t < s:
//   x_t = x_s - (s - t) (F x_s - G G^T score_s) + G(s) (W(s) - W(t)),
// with G the symmetric square root of G G^T. The noise is additive, so the strong order is 1.
// (DDPM ancestral sampling is ddim with eta = 1, in exponential.hpp.)
#pragma once

#include <Eigen/Eigenvalues>

#include "pflow/sampler/solver.hpp"
#include "pflow/sampler/solver_record.hpp"

namespace pflow {

template <class Scalar>
BlockMatrix<Scalar> psd_sqrt(const BlockMatrix<Scalar>& m) {
  using std::sqrt;
  return m.map([](const Mat<Scalar>& block) {
    Eigen::SelfAdjointEigenSolver<Mat<Scalar>> eig(block);
    const Vec<Scalar> root = eig.eigenvalues().cwiseMax(Scalar(0)).cwiseSqrt();
    return Mat<Scalar>(eig.eigenvectors() * root.asDiagonal() * eig.eigenvectors().transpose());
  });
}

template <class Scalar>
class EulerMaruyama : public Solver<Scalar> {
 public:
  explicit EulerMaruyama(SolverInfo info) : Solver<Scalar>(std::move(info)) {}
  void run(SolveContext<Scalar>& ctx, const std::vector<Scalar>& grid,
           Mat<Scalar>& x) const override {
    const LinearSde<Scalar>& sde = ctx.sde();
    for (size_t i = 0; i + 1 < grid.size(); ++i) {
      const Scalar &s = grid[i], &t = grid[i + 1];
      const BlockMatrix<Scalar> ggt = sde.diffusion(s);
      const Mat<Scalar> drift = sde.apply(sde.drift(s), x) - sde.apply(ggt, ctx.score(x, s));
      const Mat<Scalar> dw = ctx.brownian_increment(s, t, x.rows(), x.cols());
      x = x - (s - t) * drift + sde.apply(psd_sqrt(ggt), dw);
      ctx.step_done(static_cast<int>(i), t, x);
    }
  }
};

// The record of Euler-Maruyama (solver_record.hpp).
template <class Scalar>
void add_stochastic_solvers(SolverTable<Scalar>& table) {
  SolverRecord<Scalar> r;
  r.name = "euler-maruyama";
  r.family = "stochastic";
  r.reference = "Maruyama 1955 on the reverse SDE (Song et al. 2021, eq. 6)";
  r.order_note = "(additive noise)";
  r.traits = [](const SolverParams&) {
    SolverTraits t;
    t.stochastic = true;
    t.weak_order = 1;
    return t;
  };
  r.order_test_exempt =
      "stochastic: strong and weak orders in the [stochastic] tests and kind \"stochastic\"";
  r.make = [](const SolverParams&, SolverInfo info) {
    return std::make_unique<EulerMaruyama<Scalar>>(std::move(info));
  };
  table.push_back(std::move(r));
}

}  // namespace pflow
