// The probability-flow ODE dx/dt = F(t) x - D(t) grad log p_t(x), D = G G^T / 2, and its 50-digit
// reference solution for any Gaussian-mixture target, or for any model's own flow (the score
// replaced by the model's: a learned network evaluated in 50 digits; docs/NOTES.md sec. 2, 10).
#pragma once

#include <functional>

#include "pflow/core/odeint.hpp"
#include "pflow/sampler/denoiser.hpp"
#include "pflow/sde/kernel_numeric.hpp"
#include "pflow/target/marginal.hpp"

namespace pflow {

// Right-hand side of the PF-ODE at time t for states x (D x n), with the model's score.
template <class Scalar>
Mat<Scalar> pf_ode_rhs(const LinearSde<Scalar>& sde, const Denoiser<Scalar>& model,
                       const Mat<Scalar>& x, const Scalar& t) {
  return sde.apply(sde.drift(t), x) -
         sde.apply(sde.diffusion(t).scaled(ratio<Scalar>(1, 2)), model.score(x, t));
}

// The same with the exact score of Gaussian-mixture data.
template <class Scalar>
Mat<Scalar> pf_ode_rhs(const LinearSde<Scalar>& sde, const GaussianMixture<Scalar>& data,
                       const Mat<Scalar>& x, const Scalar& t) {
  return pf_ode_rhs<Scalar>(sde, AnalyticDenoiser<Scalar>(sde, data), x, t);
}

// Reference tolerance: 1e-32 in mp50, 1e-14 in double (ScalarTraits).
template <class Scalar>
Scalar reference_tolerance() {
  return ScalarTraits<Scalar>::reference_tolerance();
}

struct ReferenceStats {
  long evaluations = 0;  // right-hand-side evaluations, all particles
  // Called after each particle with (particles done, total): progress of long solves.
  std::function<void(Eigen::Index, Eigen::Index)> on_particle;
};

// Integrates the PF-ODE of `model` from t_start to t_end with Bulirsch-Stoer, particle by
// particle (so the result of a particle does not depend on the others). x: D x n states at
// t_start.
template <class Scalar>
Mat<Scalar> reference_flow(const LinearSde<Scalar>& sde, const Denoiser<Scalar>& model,
                           const Mat<Scalar>& x, const Scalar& t_start, const Scalar& t_end,
                           const Scalar& tol = reference_tolerance<Scalar>(),
                           ReferenceStats* stats = nullptr) {
  Mat<Scalar> out = x;
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    Vec<Scalar> state = x.col(j);
    auto rhs = [&](const Vec<Scalar>& s, const Scalar& t) -> Vec<Scalar> {
      return pf_ode_rhs<Scalar>(sde, model, s, t).col(0);
    };
    const long evals = integrate_bulirsch_stoer<Scalar>(rhs, state, t_start, t_end, tol);
    out.col(j) = state;
    if (stats) {
      stats->evaluations += evals;
      if (stats->on_particle) stats->on_particle(j + 1, x.cols());
    }
  }
  return out;
}

// The PF-ODE of Gaussian-mixture data (the exact score).
template <class Scalar>
Mat<Scalar> reference_flow(const LinearSde<Scalar>& sde, const GaussianMixture<Scalar>& data,
                           const Mat<Scalar>& x, const Scalar& t_start, const Scalar& t_end,
                           const Scalar& tol = reference_tolerance<Scalar>(),
                           ReferenceStats* stats = nullptr) {
  return reference_flow<Scalar>(sde, AnalyticDenoiser<Scalar>(sde, data), x, t_start, t_end, tol,
                                stats);
}

}  // namespace pflow
