// Exact PF-ODE flow maps x_s -> x_t for Gaussian (and Dirac) data (docs/NOTES.md sec. 2).
//
// * Scalar SDEs (closed form): with S0 = U diag(s_i) U^T and C_t = alpha_t^2 S0 + sigma_t^2 I
//   (all C_t commute), x_t = alpha_t mu + C_t^{1/2} C_s^{-1/2} (x_s - alpha_s mu).
// * Matrix SDEs: any R with dR/dt = (F + D C^{-1}) R and R R^T = C at one time keeps R R^T = C,
//   and x_t - m_t = R_t R_s^{-1} (x_s - m_s). R is integrated forwards in time from the earlier
//   of s, t (backwards is ill-conditioned), starting at the Cholesky factor there; the map does
//   not depend on that choice.
// * 2x2 blocks (CLD): R = L Rot(theta), L = chol(C), with theta' = -(L^{-1} A L)_{01},
//   A = F + D C^{-1} (derived in analytic/blurring_and_flow.py), so R_t R_s^{-1} =
//   L_t Rot(theta_t - theta_s) L_s^{-1} by one scalar quadrature per block: an independent path.
#pragma once

#include <Eigen/Eigenvalues>
#include <map>

#include "pflow/flow/pf_ode.hpp"

namespace pflow {

// The Gaussian (or Dirac) data of a one-component target, checked.
template <class Scalar>
void require_single_gaussian(const GaussianMixture<Scalar>& data) {
  require(data.components() == 1, "target", data.kind(),
          "has no exact flow map (needs one Gaussian component; use the reference solver)");
}

// Marginal mean m_t and covariance C_t of one-component data, spectral coordinates.
template <class Scalar>
std::pair<Mat<Scalar>, BlockMatrix<Scalar>> gaussian_marginal(const LinearSde<Scalar>& sde,
                                                              const GaussianMixture<Scalar>& data,
                                                              const Scalar& t) {
  const BlockMatrix<Scalar> psi = sde.transition(t, Scalar(0));
  const Mat<Scalar> mean = psi.apply(sde.lift_data(data.means()));
  return {mean, sde.marginal_covariance(data.cov(0), psi, sde.covariance(t))};
}

// Closed form for scalar SDEs, mode by mode: in the eigenbasis of S0 each coordinate is scaled
// by sqrt((alpha_t^2 s_i + sigma_t^2) / (alpha_s^2 s_i + sigma_s^2)). A dense S0 uses the data's
// cached spectrum (one eigendecomposition per run, O(d^2) per particle); a diagonal or scaled
// identity one needs none (O(d) per particle), nor does a scaled identity plus low rank r
// (O(d r) per particle).
template <class Scalar>
Mat<Scalar> exact_flow_scalar(const ScalarSde<Scalar>& sde, const GaussianMixture<Scalar>& data,
                              const Mat<Scalar>& xs, const Scalar& s, const Scalar& t) {
  using std::sqrt;
  require_single_gaussian(data);
  const Scalar at = sde.alpha(t), as = sde.alpha(s), st = sde.sigma(t), ss = sde.sigma(s);
  const auto gains = [&](const Vec<Scalar>& values) {
    Vec<Scalar> gain(values.size());
    for (Eigen::Index i = 0; i < gain.size(); ++i) {
      const Scalar ev = std::max<Scalar>(values(i), Scalar(0));
      gain(i) = sqrt((at * at * ev + st * st) / (as * as * ev + ss * ss));
    }
    return gain;
  };
  const Vec<Scalar> mu = data.means().col(0);
  const Mat<Scalar> centred = xs.colwise() - as * mu;
  const BlockMatrix<Scalar>& cov = data.cov(0);
  Mat<Scalar> out;
  const LowRankPlusDiagonal* low_rank = data.low_rank(0);
  if (low_rank && low_rank->scaled_identity) {
    // S0 = c I + U diag(l) U^T: gain g(c) off the span of U, g(c + l_i) along u_i; O(d r).
    const Vec<Scalar> c = Vec<Scalar>::Constant(1, from_double<Scalar>(low_rank->diagonal(0)));
    const Scalar off_span = gains(c)(0);
    const Vec<Scalar> along =
        gains((low_rank->values.array() + low_rank->diagonal(0)).matrix().template cast<Scalar>())
            .array() -
        off_span;
    const Mat<Scalar> u = low_rank->vectors.template cast<Scalar>();
    out = off_span * centred + u * (along.asDiagonal() * (u.transpose() * centred));
  } else if (const auto* spectrum = data.spectrum(0)) {
    const Mat<Scalar>& u = spectrum->vectors;
    out = u * (gains(spectrum->values).asDiagonal() * (u.transpose() * centred));
  } else if (cov.block_size() == 1) {
    out = gains(cov.diagonal_values()).asDiagonal() * centred;
  } else {
    const Eigen::SelfAdjointEigenSolver<Mat<Scalar>> eig(cov.to_dense());
    const Mat<Scalar>& u = eig.eigenvectors();
    out = u * (gains(eig.eigenvalues()).asDiagonal() * (u.transpose() * centred));
  }
  return out.colwise() + at * mu;
}

namespace detail {

// Expands `x` to the layout of `like` (shared -> per group, anything -> dense).
template <class Scalar>
BlockMatrix<Scalar> conform(const BlockMatrix<Scalar>& x, const BlockMatrix<Scalar>& like) {
  if (x.groups() == like.groups() && x.block_size() == like.block_size()) {
    if (x.is_shared() == like.is_shared()) return x;
    std::vector<Mat<Scalar>> blocks(like.groups(), x.block(0));
    return BlockMatrix<Scalar>::per_group(std::move(blocks));
  }
  return x.as_dense();
}

template <class Scalar>
BlockMatrix<Scalar> pf_matrix(const LinearSde<Scalar>& sde, const BlockMatrix<Scalar>& cov,
                              const Scalar& t) {
  // A = F + D C^{-1}
  return sde.drift(t) + sde.diffusion(t).scaled(ratio<Scalar>(1, 2)) * cov.inverse();
}

}  // namespace detail

// Carries a factor R from time lo to hi >= lo along the forward R-ODE dR/dt = (F + D C^{-1}) R
// for the covariance path `cov` (spectral coordinates, in r_lo's block structure). If
// R R^T = C(lo) then R R^T = C(hi).
template <class Scalar, class CovarianceAt>
BlockMatrix<Scalar> propagate_r_factor(const LinearSde<Scalar>& sde, CovarianceAt&& cov,
                                       const BlockMatrix<Scalar>& r_lo, const Scalar& lo,
                                       const Scalar& hi,
                                       const Scalar& tol = default_ode_tolerance<Scalar>()) {
  const int nb = r_lo.stored_blocks(), b = r_lo.block_size(), bb = b * b;
  auto pack = [&](const BlockMatrix<Scalar>& r) {
    Vec<Scalar> v(nb * bb);
    for (int k = 0; k < nb; ++k)
      Eigen::Map<Mat<Scalar>>(v.data() + k * bb, b, b) = r.stored_block(k);
    return v;
  };
  auto unpack = [&](const Vec<Scalar>& v) {
    BlockMatrix<Scalar> r = r_lo;
    for (int k = 0; k < nb; ++k)
      r.stored_block(k) = Eigen::Map<const Mat<Scalar>>(v.data() + k * bb, b, b);
    return r;
  };
  Vec<Scalar> state = pack(r_lo);
  auto rhs = [&](const Vec<Scalar>& v, const Scalar& r) {
    return pack(detail::conform(detail::pf_matrix(sde, cov(r), r) * unpack(v), r_lo));
  };
  integrate_bulirsch_stoer<Scalar>(rhs, state, lo, hi, tol);
  return unpack(state);
}

// R at time hi from R(lo) = chol(C(lo)) for Gaussian data; then R R^T = C(hi).
template <class Scalar>
BlockMatrix<Scalar> r_ode_factor(const LinearSde<Scalar>& sde, const GaussianMixture<Scalar>& data,
                                 const Scalar& lo, const Scalar& hi,
                                 const Scalar& tol = default_ode_tolerance<Scalar>()) {
  auto cov = [&](const Scalar& r) { return gaussian_marginal(sde, data, r).second; };
  return propagate_r_factor(sde, cov, cov(lo).cholesky(), lo, hi, tol);
}

// The linear map R_t R_s^{-1} (spectral coordinates) by the forward R-ODE.
template <class Scalar>
BlockMatrix<Scalar> flow_propagator_r_ode(const LinearSde<Scalar>& sde,
                                          const GaussianMixture<Scalar>& data, const Scalar& s,
                                          const Scalar& t) {
  const Scalar lo = std::min(s, t), hi = std::max(s, t);
  const BlockMatrix<Scalar> r_lo = gaussian_marginal(sde, data, lo).second.cholesky();
  const BlockMatrix<Scalar> r_hi = r_ode_factor(sde, data, lo, hi);
  // Forward in time (s < t): R_t R_s^{-1} = R_hi R_lo^{-1}; backward: the inverse pair.
  return s <= t ? r_hi * r_lo.inverse() : r_lo * r_hi.inverse();
}

// The increment of the rotation angle theta of R = L Rot(theta) over [a, b] for a covariance
// path `cov` with 2x2 blocks: theta' = -(L^{-1} A L)_{01}, A = F + D C^{-1}, one angle per stored
// block of `like`. Gauss-Legendre on panels that are geometric when b/a is large (near t = 0
// the integrand of Dirac data grows like 1/t).
template <class Scalar, class CovarianceAt>
std::vector<Scalar> rotation_angle_increment(const LinearSde<Scalar>& sde, CovarianceAt&& cov,
                                             const Scalar& a, const Scalar& b,
                                             const BlockMatrix<Scalar>& like, int points = 24) {
  using std::ceil;
  using std::log;
  using std::pow;
  const auto& [nodes, weights] = gauss_legendre_cached<Scalar>(points);
  const int nb = like.stored_blocks();
  std::vector<Scalar> theta(nb, Scalar(0));
  const Scalar lo = std::min(a, b), hi = std::max(a, b);
  const bool geometric = lo > 0 && hi / lo > 4;
  const int panels =
      geometric ? std::max(4, static_cast<int>(ceil(to_double(Scalar(log(hi / lo)))) * 4)) : 4;
  for (int p = 0; p < panels; ++p) {
    const Scalar p0 = geometric ? Scalar(lo * pow(hi / lo, Scalar(p) / panels))
                                : Scalar(lo + (hi - lo) * p / panels);
    const Scalar p1 = geometric ? Scalar(lo * pow(hi / lo, Scalar(p + 1) / panels))
                                : Scalar(lo + (hi - lo) * (p + 1) / panels);
    for (int i = 0; i < points; ++i) {
      const Scalar r = (p0 + p1) / 2 + (p1 - p0) / 2 * nodes[i];
      const BlockMatrix<Scalar> c = cov(r);
      const BlockMatrix<Scalar> l = c.cholesky();
      const BlockMatrix<Scalar> m =
          detail::conform(l.inverse() * detail::pf_matrix(sde, c, r) * l, like);
      for (int k = 0; k < nb; ++k) theta[k] -= weights[i] * (p1 - p0) / 2 * m.stored_block(k)(0, 1);
    }
  }
  if (b < a)
    for (auto& th : theta) th = -th;
  return theta;
}

template <class Scalar>
BlockMatrix<Scalar> rotation_blocks(const std::vector<Scalar>& theta,
                                    const BlockMatrix<Scalar>& like) {
  using std::cos;
  using std::sin;
  BlockMatrix<Scalar> rot = like;
  for (size_t k = 0; k < theta.size(); ++k) {
    Mat<Scalar> q(2, 2);
    q << cos(theta[k]), -sin(theta[k]), sin(theta[k]), cos(theta[k]);
    rot.stored_block(static_cast<int>(k)) = q;
  }
  return rot;
}

// The map R_t R_s^{-1} by the rotation-angle quadrature, for 2x2 blocks.
template <class Scalar>
BlockMatrix<Scalar> flow_propagator_rotation(const LinearSde<Scalar>& sde,
                                             const GaussianMixture<Scalar>& data, const Scalar& s,
                                             const Scalar& t) {
  auto cov = [&](const Scalar& r) { return gaussian_marginal(sde, data, r).second; };
  const BlockMatrix<Scalar> ls = cov(s).cholesky();
  const BlockMatrix<Scalar> lt = cov(t).cholesky();
  require(ls.block_size() == 2, "sde", sde.name(),
          "the rotation-angle form needs 2x2 blocks (block size " + to_text(ls.block_size()) + ")");
  const auto theta = rotation_angle_increment(sde, cov, s, t, ls);
  return detail::conform(lt * rotation_blocks(theta, ls) * ls.inverse(), ls);
}

// Factors R with R R^T = C(t) that follow the R-ODE, at each of `times`, all on one solution:
// 1x1 blocks: R = chol(C) (it solves the R-ODE); 2x2 blocks: R = L Rot(theta) with theta by
// quadrature, so R R^T = C holds to round-off at every time even where C is nearly singular;
// larger blocks: the R-ODE from the earliest time.
template <class Scalar, class CovarianceAt>
std::map<Scalar, BlockMatrix<Scalar>> r_factors_at(const LinearSde<Scalar>& sde, CovarianceAt&& cov,
                                                   std::vector<Scalar> times) {
  std::sort(times.begin(), times.end());
  times.erase(std::unique(times.begin(), times.end()), times.end());
  std::map<Scalar, BlockMatrix<Scalar>> out;
  std::vector<Scalar> theta;
  for (size_t i = 0; i < times.size(); ++i) {
    BlockMatrix<Scalar> l = cov(times[i]).cholesky();
    if (i > 0 && l.block_size() == 2) {
      const auto inc = rotation_angle_increment(sde, cov, times[i - 1], times[i], l);
      if (theta.empty()) theta.assign(inc.size(), Scalar(0));
      for (size_t k = 0; k < inc.size(); ++k) theta[k] += inc[k];
      l = detail::conform(l * rotation_blocks(theta, l), l);
    } else if (i > 0 && l.block_size() > 2) {
      l = propagate_r_factor(sde, cov, out.at(times[i - 1]), times[i - 1], times[i]);
    }
    out.emplace(times[i], std::move(l));
  }
  return out;
}

// x_t from x_s (D x n) for Gaussian data: the closed form for scalar SDEs, the R-ODE otherwise.
template <class Scalar>
Mat<Scalar> exact_flow_map(const LinearSde<Scalar>& sde, const GaussianMixture<Scalar>& data,
                           const Mat<Scalar>& xs, const Scalar& s, const Scalar& t) {
  require_single_gaussian(data);
  if (const auto* scalar = dynamic_cast<const ScalarSde<Scalar>*>(&sde))
    return exact_flow_scalar(*scalar, data, xs, s, t);
  const Mat<Scalar> ms = gaussian_marginal(sde, data, s).first;
  const Mat<Scalar> mt = gaussian_marginal(sde, data, t).first;
  const BlockMatrix<Scalar> map = flow_propagator_r_ode(sde, data, s, t);
  const Mat<Scalar> zs = sde.to_spectral(xs);
  return sde.from_spectral(map.apply(zs.colwise() - ms.col(0)).colwise() + mt.col(0));
}

// Compiled once for double, mp50 and f128 (instantiate_mixture.cpp).
#define PFLOW_EXACT_FLOW_INSTANTIATION(PREFIX, S)                                          \
  PREFIX template Mat<S> exact_flow_map<S>(const LinearSde<S>&, const GaussianMixture<S>&, \
                                           const Mat<S>&, const S&, const S&);
PFLOW_EXACT_FLOW_INSTANTIATION(extern, double)
PFLOW_EXACT_FLOW_INSTANTIATION(extern, mp50)
PFLOW_EXACT_FLOW_INSTANTIATION(extern, f128)

}  // namespace pflow
