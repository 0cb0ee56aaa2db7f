// The probability-flow ODE dx/dt = F(t) x - D(t) grad log p_t(x), D = G G^T / 2, and its 50-digit
// reference solution for any Gaussian-mixture target, or for any model's own flow (the score
// replaced by the model's: a learned network evaluated in 50 digits; docs/NOTES.md sec. 2, 10).
#pragma once

#include <atomic>
#include <functional>
#include <mutex>

#include "pflow/core/odeint.hpp"
#include "pflow/core/threads.hpp"
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
  // Called after each particle with (particles done, total): progress of long solves (from one
  // thread at a time).
  std::function<void(Eigen::Index, Eigen::Index)> on_particle;
  // Particles are solved on this many threads; each particle's solve is the same whatever the
  // count, so the result is bit-identical for any value.
  int threads = 1;
};

// Integrates the PF-ODE of `model` from t_start to t_end with Bulirsch-Stoer, particle by
// particle (so the result of a particle does not depend on the others), on stats->threads
// threads. x: D x n states at t_start.
template <class Scalar>
Mat<Scalar> reference_flow(const LinearSde<Scalar>& sde, const Denoiser<Scalar>& model,
                           const Mat<Scalar>& x, const Scalar& t_start, const Scalar& t_end,
                           const Scalar& tol = reference_tolerance<Scalar>(),
                           ReferenceStats* stats = nullptr) {
  Mat<Scalar> out = x;
  std::atomic<Eigen::Index> done{0};
  std::atomic<long> evaluations{0};
  std::mutex report;
  parallel_for_indices(static_cast<size_t>(x.cols()), stats ? stats->threads : 1, [&](size_t k) {
    const auto j = static_cast<Eigen::Index>(k);
    Vec<Scalar> state = x.col(j);
    auto rhs = [&](const Vec<Scalar>& s, const Scalar& t) -> Vec<Scalar> {
      return pf_ode_rhs<Scalar>(sde, model, s, t).col(0);
    };
    evaluations += integrate_bulirsch_stoer<Scalar>(rhs, state, t_start, t_end, tol);
    out.col(j) = state;
    const Eigen::Index finished = ++done;
    if (stats && stats->on_particle) {
      const std::lock_guard<std::mutex> lock(report);
      stats->on_particle(finished, x.cols());
    }
    return true;
  });
  if (stats) stats->evaluations += evaluations;
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

// Compiled once for double, mp50 and f128 (instantiate_mixture.cpp): the Bulirsch-Stoer driver
// in each number type is not compiled again by every user.
#define PFLOW_REFERENCE_FLOW_INSTANTIATION(PREFIX, S)                                              \
  PREFIX template Mat<S> reference_flow<S>(const LinearSde<S>&, const Denoiser<S>&, const Mat<S>&, \
                                           const S&, const S&, const S&, ReferenceStats*);         \
  PREFIX template Mat<S> reference_flow<S>(const LinearSde<S>&, const GaussianMixture<S>&,         \
                                           const Mat<S>&, const S&, const S&, const S&,            \
                                           ReferenceStats*);
PFLOW_REFERENCE_FLOW_INSTANTIATION(extern, double)
PFLOW_REFERENCE_FLOW_INSTANTIATION(extern, mp50)
PFLOW_REFERENCE_FLOW_INSTANTIATION(extern, f128)

}  // namespace pflow
