// Euler-Maruyama on the family of reverse-time SDEs with the marginals p_t of the forward one
// (docs/NOTES.md sec. 16):
//   dx = [F x - (1 + eta^2)/2 G G^T grad log p_t(x)] dt + eta G dw_bar,   0 < eta <= 1,
// eta = 1 the reverse SDE (Anderson 1982; Song et al. 2021, eq. 6), eta -> 0 the probability-flow
// ODE. Stepping from s to t < s:
//   x_t = x_s - (s - t) (F x_s - (1 + eta^2)/2 G G^T score_s) + eta G(s) (W(s) - W(t)),
// with G the symmetric square root of G G^T. The noise is additive, so the strong order is 1.
// ddim with eta on a scalar SDE discretises the same SDE (its noise is eta sigma_t sqrt(1 -
// e^{-2h}) z = eta g sqrt(s - t) z + O(h^{3/2})), so this is its pathwise reference; DDPM
// ancestral sampling is ddim with eta = 1, in exponential.hpp.
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
  EulerMaruyama(SolverInfo info, double eta)
      : Solver<Scalar>(std::move(info)), eta_(from_double<Scalar>(eta)) {}
  void run(SolveContext<Scalar>& ctx, const std::vector<Scalar>& grid,
           Mat<Scalar>& x) const override {
    const LinearSde<Scalar>& sde = ctx.sde();
    for (size_t i = 0; i + 1 < grid.size(); ++i) {
      const Scalar &s = grid[i], &t = grid[i + 1];
      const BlockMatrix<Scalar> ggt = sde.diffusion(s);
      const Scalar score_weight = (1 + eta_ * eta_) / 2;
      const Mat<Scalar> drift =
          sde.apply(sde.drift(s), x) - score_weight * sde.apply(ggt, ctx.score(x, s));
      const Mat<Scalar> dw = ctx.brownian_increment(s, t, x.rows(), x.cols());
      x = x - (s - t) * drift + eta_ * sde.apply(psd_sqrt(ggt), dw);
      ctx.step_done(static_cast<int>(i), t, x);
    }
  }

 private:
  Scalar eta_;
};

// The record of Euler-Maruyama (solver_record.hpp).
template <class Scalar>
void add_stochastic_solvers(SolverTable<Scalar>& table) {
  SolverRecord<Scalar> r;
  r.name = "euler-maruyama";
  r.family = "stochastic";
  r.reference =
      "Maruyama 1955 on the reverse SDE (Song et al. 2021, eq. 6; eta < 1: the SDE of "
      "ddim's eta, docs/NOTES.md sec. 16)";
  r.order_note = "(additive noise)";
  r.parameters = {number_parameter("eta", 1.0, 0.0, 1.0)};
  r.traits = [](const SolverParams& p) {
    SolverTraits t;
    t.stochastic = p.number("eta") > 0;  // eta = 0: Euler on the probability-flow ODE in t
    t.weak_order = t.stochastic ? 1 : 0;
    return t;
  };
  r.order_test_exempt =
      "stochastic: strong and weak orders in the [stochastic] tests and kind \"stochastic\"";
  r.make = [](const SolverParams& p, SolverInfo info) {
    return std::make_unique<EulerMaruyama<Scalar>>(std::move(info), p.number("eta"));
  };
  table.push_back(std::move(r));
}

}  // namespace pflow
