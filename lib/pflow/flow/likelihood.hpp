// The log-likelihood through the probability-flow ODE (instantaneous change of variables;
// docs/NOTES.md sec. 12). Along a solution x_t of dx/dt = f(x, t) = F(t) x - D(t) s(x, t),
// D = G G^T / 2, the density obeys d/dt log p_t(x_t) = -div f(x_t, t), so
//
//   log p_eps(x) = log p_T(x_T) + int_eps^T div f(x_t, t) dt,  div f = tr F(t) - tr(D grad s),
//
// integrating x and the divergence integral together from the data side (t = eps) to T.
// log p_T is the exact marginal of a mixture target ("exact" prior) or the marginal of a point
// mass at the origin, N(0, Sigma(T)) with CLD's velocity prior ("gaussian" prior).
#pragma once

#include <string>

#include "pflow/core/threads.hpp"
#include "pflow/flow/pf_ode.hpp"
#include "pflow/sampler/odeint_solvers.hpp"

namespace pflow {

// The augmented right-hand side for states x (D x n): the PF-ODE drift (D x n) and the
// divergence of it per particle (1 x n), stacked (D + 1) x n. The divergence is exact, or with
// `probes` (D x n, one per column, E[v v^T] = I) Hutchinson's estimate tr(D grad s) ~
// v^T D (grad s v), from one Jacobian-vector product.
template <class Scalar>
Mat<Scalar> likelihood_rhs(const LinearSde<Scalar>& sde, const Denoiser<Scalar>& model,
                           const Mat<Scalar>& x, const Scalar& t,
                           const Mat<Scalar>* probes = nullptr) {
  const BlockMatrix<Scalar> d = sde.diffusion(t).scaled(ratio<Scalar>(1, 2));
  Mat<Scalar> out(x.rows() + 1, x.cols());
  out.topRows(x.rows()) = sde.apply(sde.drift(t), x) - sde.apply(d, model.score(x, t));
  Vec<Scalar> divergence;
  if (probes) {
    const Mat<Scalar> dv = sde.apply(d, *probes);  // D v in the ambient basis (D symmetric)
    divergence = dv.cwiseProduct(model.score_jvp(x, t, *probes)).colwise().sum().transpose();
  } else {
    divergence = model.score_divergence(x, t, d);
  }
  out.row(x.rows()) =
      (Vec<Scalar>::Constant(x.cols(), sde.drift(t).trace()) - divergence).transpose();
  return out;
}

// log p_T at the states x_T (D x n): the exact marginal of `mixture`, or with a null mixture
// the marginal of a point mass at the origin.
template <class Scalar>
Vec<Scalar> log_prior(const LinearSde<Scalar>& sde, const GaussianMixture<Scalar>* mixture,
                      const Mat<Scalar>& x, const Scalar& t) {
  if (mixture) return Marginal<Scalar>(sde, *mixture, t).log_density(x);
  const auto origin = GaussianMixture<Scalar>::dirac(Vec<Scalar>::Zero(sde.data_dim()));
  return Marginal<Scalar>(sde, origin, t).log_density(x);
}

template <class Scalar>
struct LikelihoodSolve {
  Vec<Scalar> log_density;  // log p_eps at the starting points
  Mat<Scalar> x_end;        // the states at T (the encodings)
  long nfe = 0;             // right-hand sides: each is one score and divergence of all particles
  int steps = 0;
};

// The odeint `method` on the augmented ODE from grid.front() = eps to grid.back() = T (the
// grid increasing), in t or, for scalar SDEs, in -lambda; fixed steps on the grid, or adaptive
// at `tolerance`.
template <class Scalar>
LikelihoodSolve<Scalar> likelihood_solve(const LinearSde<Scalar>& sde,
                                         const Denoiser<Scalar>& model,
                                         const GaussianMixture<Scalar>* prior, const Mat<Scalar>& x,
                                         const std::vector<Scalar>& grid, const std::string& method,
                                         bool adaptive, const Scalar& tolerance, bool in_lambda,
                                         const Mat<Scalar>* probes = nullptr) {
  using State = Vec<Scalar>;
  const Eigen::Index rows = x.rows(), cols = x.cols();
  const auto* scalar = in_lambda ? dynamic_cast<const ScalarSde<Scalar>*>(&sde) : nullptr;
  require(!in_lambda || scalar, "variable", "lambda", "needs a scalar SDE, not " + sde.name());
  LikelihoodSolve<Scalar> out;
  // tau = t, or tau = -lambda(t) (increasing with t): dt/dtau = 2 sigma^2 / g^2.
  auto system = [&](const State& state, State& dstate, const Scalar tau) {
    ++out.nfe;
    const Scalar t = scalar ? scalar->t_of_lambda(Scalar(-tau)) : tau;
    const Mat<Scalar> xs =
        Eigen::Map<const Mat<Scalar>>(state.data(), rows + 1, cols).topRows(rows);
    Mat<Scalar> rhs = likelihood_rhs(sde, model, xs, t, probes);
    if (scalar) {
      const Scalar sigma = scalar->sigma(t);
      rhs *= 2 * sigma * sigma / scalar->g2(t);
    }
    dstate = Eigen::Map<const State>(rhs.data(), rhs.size());
  };
  std::vector<Scalar> taus(grid.size());
  for (size_t i = 0; i < grid.size(); ++i)
    taus[i] = scalar ? Scalar(-scalar->lambda(grid[i])) : grid[i];
  Mat<Scalar> augmented = Mat<Scalar>::Zero(rows + 1, cols);
  augmented.topRows(rows) = x;
  State state = Eigen::Map<const State>(augmented.data(), augmented.size());
  out.steps = odeint_integrate(method, adaptive, tolerance, system, state, taus, [&](int step) {
    if (!state.allFinite())
      throw NumericalError("solver " + method + ": non-finite state at step " + to_text(step));
  });
  augmented = Eigen::Map<const Mat<Scalar>>(state.data(), rows + 1, cols);
  out.x_end = augmented.topRows(rows);
  out.log_density = log_prior(sde, prior, out.x_end, grid.back()) + augmented.row(rows).transpose();
  return out;
}

// The same integral by Bulirsch-Stoer, particle by particle at tolerance `tol` on `threads`
// threads (the 50-digit reference of models without a closed-form log p_eps).
template <class Scalar>
Vec<Scalar> likelihood_reference(const LinearSde<Scalar>& sde, const Denoiser<Scalar>& model,
                                 const GaussianMixture<Scalar>* prior, const Mat<Scalar>& x,
                                 const Scalar& t_end, const Scalar& t_start, const Scalar& tol,
                                 int threads) {
  const Eigen::Index rows = x.rows();
  Mat<Scalar> ends(rows, x.cols());
  Vec<Scalar> integrals(x.cols());
  parallel_for_indices(static_cast<size_t>(x.cols()), threads, [&](size_t k) {
    const auto j = static_cast<Eigen::Index>(k);
    Vec<Scalar> state = Vec<Scalar>::Zero(rows + 1);
    state.head(rows) = x.col(j);
    auto rhs = [&](const Vec<Scalar>& s, const Scalar& t) -> Vec<Scalar> {
      return likelihood_rhs<Scalar>(sde, model, Mat<Scalar>(s.head(rows)), t).col(0);
    };
    integrate_bulirsch_stoer<Scalar>(rhs, state, t_end, t_start, tol);
    ends.col(j) = state.head(rows);
    integrals(j) = state(rows);
    return true;
  });
  return log_prior(sde, prior, ends, t_start) + integrals;
}

}  // namespace pflow
