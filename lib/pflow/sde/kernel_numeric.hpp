// Independent numerical paths to the perturbation kernel (docs/NOTES.md sec. 1 and 5):
//  * the Lyapunov ODE dSigma/dt = F Sigma + Sigma F^T + G G^T and dPsi/dt = F Psi, integrated
//    with Bulirsch-Stoer;
//  * variation of constants, Sigma(t) = Psi(t,0) Sigma_0 Psi(t,0)^T
//    + int_0^t Psi(t,r) G G^T(r) Psi(t,r)^T dr, by composite Gauss-Legendre quadrature;
//  * Van Loan's block exponential is in sde.hpp (it is also the primary path of the generic SDE);
//  * the frozen-time equilibrium Sigma_eq and circulating part Q = -F Sigma_eq - D.
// All are computed block by block in the SDE's structure.
#pragma once

#include <map>
#include <mutex>
#include <stdexcept>

#include <vector>

#include "pflow/core/odeint.hpp"
#include "pflow/sde/sde.hpp"

namespace pflow {

namespace detail {

// Number of distinct blocks needed to represent F, G G^T and Sigma_0 together.
template <class Scalar>
int distinct_blocks(const LinearSde<Scalar>& sde, const Scalar& t) {
  const bool shared = sde.drift(t).is_shared() && sde.diffusion(t).is_shared() &&
                      sde.initial_covariance().is_shared();
  return shared ? 1 : sde.groups();
}

template <class Scalar>
BlockMatrix<Scalar> assemble(const LinearSde<Scalar>& sde, std::vector<Mat<Scalar>> blocks) {
  if (blocks.size() == 1) return BlockMatrix<Scalar>::shared(sde.groups(), std::move(blocks[0]));
  return BlockMatrix<Scalar>::per_group(std::move(blocks));
}

}  // namespace detail

// Default ODE tolerances: 1e-15 in double, 1e-40 in mp50 (ScalarTraits).
template <class Scalar>
Scalar default_ode_tolerance() {
  return ScalarTraits<Scalar>::ode_tolerance();
}

namespace detail {

// Integrates a block-structured matrix ODE dX_k/dr = rhs_k(X, r) (X_k = block k, flattened) from
// r = start through `times`, which move monotonically away from `start`, and returns the blocks
// at every time. One pass: each segment continues from the previous time, so a grid of n times
// costs one solve to the farthest time, not n solves from `start`.
template <class Scalar, class Rhs>
std::vector<std::vector<Mat<Scalar>>> integrate_block_path(Rhs&& rhs, Vec<Scalar> state, int nb,
                                                           int b, const Scalar& start,
                                                           const std::vector<Scalar>& times,
                                                           const Scalar& tol) {
  std::vector<std::vector<Mat<Scalar>>> out;
  Scalar here = start;
  for (const Scalar& t : times) {
    if ((t - here) * (times.back() - start) < 0)
      throw std::invalid_argument(
          "integrate_block_path: the times must move monotonically away from the start");
    integrate_bulirsch_stoer<Scalar>(rhs, state, here, t, tol);
    here = t;
    std::vector<Mat<Scalar>> blocks(nb);
    for (int k = 0; k < nb; ++k)
      blocks[k] = Eigen::Map<Mat<Scalar>>(state.data() + k * b * b, b, b);
    out.push_back(std::move(blocks));
  }
  return out;
}

}  // namespace detail

// Psi(t, s) at each t of `times` (monotone, moving away from s) by integrating
// dPsi/dr = F(r) Psi from Psi(s, s) = I.
template <class Scalar>
std::vector<BlockMatrix<Scalar>> ode_transition_path(
    const LinearSde<Scalar>& sde, const std::vector<Scalar>& times, const Scalar& s,
    const Scalar& tol = default_ode_tolerance<Scalar>()) {
  const int nb = detail::distinct_blocks(sde, s), b = sde.block_size();
  Vec<Scalar> state(nb * b * b);
  for (int k = 0; k < nb; ++k)
    Eigen::Map<Mat<Scalar>>(state.data() + k * b * b, b, b) = Mat<Scalar>::Identity(b, b);
  auto rhs = [&](const Vec<Scalar>& x, const Scalar& r) {
    const BlockMatrix<Scalar> f = sde.drift(r);
    Vec<Scalar> dx(x.size());
    for (int k = 0; k < nb; ++k) {
      Eigen::Map<Mat<Scalar>>(dx.data() + k * b * b, b, b) =
          f.block(k) * Eigen::Map<const Mat<Scalar>>(x.data() + k * b * b, b, b);
    }
    return dx;
  };
  std::vector<BlockMatrix<Scalar>> out;
  for (auto& blocks : detail::integrate_block_path<Scalar>(rhs, state, nb, b, s, times, tol))
    out.push_back(detail::assemble(sde, std::move(blocks)));
  return out;
}

// Psi(t, s) by integrating dPsi/dr = F(r) Psi from r = s to r = t.
template <class Scalar>
BlockMatrix<Scalar> ode_transition(const LinearSde<Scalar>& sde, const Scalar& t, const Scalar& s,
                                   const Scalar& tol = default_ode_tolerance<Scalar>()) {
  return ode_transition_path<Scalar>(sde, {t}, s, tol).front();
}

// Sigma(t) at each t of `times` (non-decreasing, >= 0) by integrating the Lyapunov ODE
// dSigma/dr = F Sigma + Sigma F^T + G G^T from Sigma(0) = Sigma_0.
template <class Scalar>
std::vector<BlockMatrix<Scalar>> ode_covariance_path(
    const LinearSde<Scalar>& sde, const std::vector<Scalar>& times,
    const Scalar& tol = default_ode_tolerance<Scalar>()) {
  const int nb = detail::distinct_blocks(sde, Scalar(0)), b = sde.block_size();
  const BlockMatrix<Scalar> sigma0 = sde.initial_covariance();
  Vec<Scalar> state(nb * b * b);
  for (int k = 0; k < nb; ++k)
    Eigen::Map<Mat<Scalar>>(state.data() + k * b * b, b, b) = sigma0.block(k);
  auto rhs = [&](const Vec<Scalar>& x, const Scalar& r) {
    const BlockMatrix<Scalar> f = sde.drift(r), q = sde.diffusion(r);
    Vec<Scalar> dx(x.size());
    for (int k = 0; k < nb; ++k) {
      Eigen::Map<const Mat<Scalar>> sig(x.data() + k * b * b, b, b);
      Eigen::Map<Mat<Scalar>>(dx.data() + k * b * b, b, b) =
          f.block(k) * sig + sig * f.block(k).transpose() + q.block(k);
    }
    return dx;
  };
  std::vector<BlockMatrix<Scalar>> out;
  for (auto& blocks :
       detail::integrate_block_path<Scalar>(rhs, state, nb, b, Scalar(0), times, tol))
    out.push_back(detail::assemble(sde, std::move(blocks)).symmetrized());
  return out;
}

// Sigma(t) by integrating the Lyapunov ODE from Sigma(0) = Sigma_0.
template <class Scalar>
BlockMatrix<Scalar> ode_covariance(const LinearSde<Scalar>& sde, const Scalar& t,
                                   const Scalar& tol = default_ode_tolerance<Scalar>()) {
  return ode_covariance_path<Scalar>(sde, {t}, tol).front();
}

// Gauss-Legendre nodes and weights on [-1, 1] by Newton's method on P_n, in any precision.
template <class Scalar>
std::pair<std::vector<Scalar>, std::vector<Scalar>> gauss_legendre(int n) {
  using std::abs;
  using std::cos;
  std::vector<Scalar> nodes(n), weights(n);
  for (int i = 0; i < n; ++i) {
    Scalar x = cos(pi<Scalar>() * (4 * i + 3) / (4 * n + 2));  // Tricomi's initial guess
    Scalar dp = 0;
    for (int it = 0; it < 100; ++it) {
      Scalar p0 = 1, p1 = x;  // three-term recurrence for P_n(x) and P_{n-1}(x)
      for (int k = 2; k <= n; ++k) {
        Scalar p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      dp = n * (x * p1 - p0) / (x * x - 1);
      const Scalar dx = p1 / dp;
      x -= dx;
      if (abs(dx) <= eps<Scalar>()) break;
    }
    nodes[i] = x;
    weights[i] = 2 / ((1 - x * x) * dp * dp);
  }
  return {nodes, weights};
}

// The n-point rule, computed once per precision and size. Thread-safe: `pflow run --threads N`
// workers reach it through gddim with K = R. The returned reference stays valid (std::map never
// moves its elements, and nothing is erased).
template <class Scalar>
const std::pair<std::vector<Scalar>, std::vector<Scalar>>& gauss_legendre_cached(int n) {
  static std::mutex mutex;
  static std::map<int, std::pair<std::vector<Scalar>, std::vector<Scalar>>> cache;
  const std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(n);
  if (it == cache.end()) it = cache.emplace(n, gauss_legendre<Scalar>(n)).first;
  return it->second;
}

// Sigma(t) by variation of constants with the SDE's transition Psi and adaptive Gauss-Legendre
// quadrature: a panel is bisected until its 24-point rule agrees with the rule on its halves
// (the integrand of vp-cosine near T has a pole just beyond t = 1, which fixed panels resolve
// only to ~1e-14).
template <class Scalar>
BlockMatrix<Scalar> quadrature_covariance(const LinearSde<Scalar>& sde, const Scalar& t,
                                          int points = 24) {
  // Not a structured binding: clang 14 (the fuzz build) cannot capture those in the lambda.
  const auto rule = gauss_legendre<Scalar>(points);
  const std::vector<Scalar>& nodes = rule.first;
  const std::vector<Scalar>& weights = rule.second;
  const BlockMatrix<Scalar> psi_t0 = sde.transition(t, Scalar(0));
  const BlockMatrix<Scalar> start = psi_t0 * sde.initial_covariance() * psi_t0.transpose();
  auto panel = [&](const Scalar& a, const Scalar& b) {
    const Scalar h = b - a;
    BlockMatrix<Scalar> sum = BlockMatrix<Scalar>::zero(sde.groups(), sde.block_size());
    for (int i = 0; i < points; ++i) {
      const Scalar r = a + h / 2 * (1 + nodes[i]);
      const BlockMatrix<Scalar> psi = sde.transition(t, r);
      sum = sum + (psi * sde.diffusion(r) * psi.transpose()).scaled(weights[i] * h / 2);
    }
    return sum;
  };
  const Scalar tol = eps<Scalar>() * 16;
  BlockMatrix<Scalar> total = start;
  // Depth-first bisection over a stack of (a, b, whole-panel estimate, depth).
  struct Panel {
    Scalar a, b;
    BlockMatrix<Scalar> whole;
    int depth;
  };
  std::vector<Panel> stack;
  const int initial = 8;
  for (int p = 0; p < initial; ++p) {
    const Scalar a = t * p / initial, b = t * (p + 1) / initial;
    stack.push_back({a, b, panel(a, b), 0});
  }
  while (!stack.empty()) {
    Panel cur = std::move(stack.back());
    stack.pop_back();
    const Scalar mid = (cur.a + cur.b) / 2;
    BlockMatrix<Scalar> left = panel(cur.a, mid), right = panel(mid, cur.b);
    const BlockMatrix<Scalar> halves = left + right;
    const Scalar scale = std::max<Scalar>(Scalar(1), halves.max_abs());
    if (max_abs_diff(halves, cur.whole) <= tol * scale || cur.depth >= 40) {
      total = total + halves;
    } else {
      stack.push_back({cur.a, mid, std::move(left), cur.depth + 1});
      stack.push_back({mid, cur.b, std::move(right), cur.depth + 1});
    }
  }
  return total.symmetrized();
}

// Frozen-time equilibrium: F Sigma_eq + Sigma_eq F^T + G G^T = 0, and the circulating part
// Q = -F Sigma_eq - D with D = G G^T / 2 (docs/NOTES.md sec. 5). Throws NumericalError when F has
// no stable equilibrium (F = 0 for VE and EDM).
template <class Scalar>
struct Equilibrium {
  BlockMatrix<Scalar> covariance;   // Sigma_eq
  BlockMatrix<Scalar> circulation;  // Q
};

template <class Scalar>
Equilibrium<Scalar> frozen_equilibrium(const LinearSde<Scalar>& sde, const Scalar& t) {
  const BlockMatrix<Scalar> f = sde.drift(t), q = sde.diffusion(t);
  const int nb = (f.is_shared() && q.is_shared()) ? 1 : sde.groups();
  std::vector<Mat<Scalar>> cov(nb), circ(nb);
  for (int k = 0; k < nb; ++k) {
    cov[k] = solve_lyapunov<Scalar>(f.block(k), q.block(k));
    circ[k] = -f.block(k) * cov[k] - q.block(k) / 2;
  }
  return {detail::assemble(sde, std::move(cov)), detail::assemble(sde, std::move(circ))};
}

}  // namespace pflow
