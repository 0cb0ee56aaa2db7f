// The evidence lower bound of DDPM's chain (docs/NOTES.md sec. 18), for the exact model: the
// reverse step p(x_{t-1} | x_t) = N(posterior mean at x0_hat(x_t), beta-tilde_t I) with x0_hat =
// E[x0 | x_t], and the decoder p(x0 | x1) = N(x0_hat(x1), beta_1 I). With L = L_T + sum_{t=2}^T
// L_{t-1} + L_0 (Ho et al. 2020, eq. 5; Sohl-Dickstein et al. 2015),
//   L_T     = E KL(q(x_T | x0) || N(0, I))
//           = 1/2 E[-d abar_T - d log(1 - abar_T) + abar_T |x0|^2],
//   L_{t-1} = E KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t)) = b_t^2 E|x0 - x0_hat(x_t)|^2 /
//             (2 beta-tilde_t), b_t the posterior's x0 coefficient,
//   L_0     = E[-log p(x0 | x1)] = E|x0 - x0_hat(x1)|^2 / (2 beta_1) + d/2 log(2 pi beta_1),
// and E log p(x0) >= -L, the ELBO. In eps form |x0 - x0_hat|^2 = (1 - abar_t)/abar_t |eps -
// eps_hat|^2, so L_{t-1} = w_t E|eps - eps_hat|^2 with w_t = beta_t^2 / (2 beta-tilde_t alpha_t
// (1 - abar_t)): L_simple (Ho et al.'s unweighted eps loss) times these weights is the bound.
//
// Gaussian data N(m, S): E|x0 - x0_hat(x_t)|^2 = tr Cov(x0 | x_t) = sum_i s_i (1 - abar_t) /
// (abar_t s_i + 1 - abar_t) over the eigenvalues s_i of S, all in closed form. Mixtures: Monte
// Carlo over (x0, eps) per step, with the model's x0_hat.
#pragma once

#include <Eigen/Eigenvalues>
#include <boost/math/constants/constants.hpp>

#include "pflow/sampler/denoiser.hpp"
#include "pflow/sde/vp_discrete.hpp"
#include "pflow/target/random.hpp"

namespace pflow {

// L_T, L_{t-1} (t = 2 .. T, index t - 2) and L_0, with Monte-Carlo standard errors (zero when in
// closed form).
template <class Scalar>
struct ElboTerms {
  Scalar prior = 0, decoder = 0;
  std::vector<Scalar> transitions;
  Scalar prior_se = 0, decoder_se = 0;
  std::vector<Scalar> transitions_se;
  // E|eps - eps_hat|^2 per step t = 1 .. T (index t - 1): L_simple's summands.
  std::vector<Scalar> eps_mse;
  Scalar total() const {  // L, the negative ELBO
    Scalar sum = prior + decoder;
    for (const Scalar& l : transitions) sum += l;
    return sum;
  }
  Scalar total_se() const {
    using std::sqrt;
    Scalar v = prior_se * prior_se + decoder_se * decoder_se;
    for (const Scalar& s : transitions_se) v += s * s;
    return sqrt(v);
  }
};

// w_t = beta_t^2 / (2 beta-tilde_t alpha_t (1 - abar_t)), t = 2 .. T: L_{t-1} = w_t E|eps -
// eps_hat|^2.
template <class Scalar>
Scalar elbo_weight(const VpDiscrete<Scalar>& chain, int t) {
  const Scalar beta = chain.betas().at(static_cast<size_t>(t - 1));
  return beta * beta /
         (2 * chain.posterior(t).variance * (1 - beta) * chain.one_minus_alpha_bar(t));
}

// The closed-form terms for Gaussian data N(mean, cov).
template <class Scalar>
ElboTerms<Scalar> gaussian_elbo(const VpDiscrete<Scalar>& chain, const Vec<Scalar>& mean,
                                const Mat<Scalar>& cov) {
  using std::log;
  const int steps = chain.steps();
  const Scalar d = Scalar(static_cast<int>(mean.size()));
  const Vec<Scalar> s = Eigen::SelfAdjointEigenSolver<Mat<Scalar>>(cov).eigenvalues();
  // tr Cov(x0 | x_t) per mode: s (1 - abar) / (abar s + 1 - abar).
  auto posterior_trace = [&](int t) {
    const Scalar abar = chain.alpha_bar(t), rest = chain.one_minus_alpha_bar(t);
    Scalar sum = 0;
    for (Eigen::Index i = 0; i < s.size(); ++i) sum += s(i) * rest / (abar * s(i) + rest);
    return sum;
  };
  ElboTerms<Scalar> e;
  const Scalar abar_T = chain.alpha_bar(steps);
  const Scalar second_moment = cov.trace() + mean.squaredNorm();  // E|x0|^2
  e.prior = (-d * abar_T - d * log(chain.one_minus_alpha_bar(steps)) + abar_T * second_moment) / 2;
  for (int t = 1; t <= steps; ++t) {
    const Scalar trace = posterior_trace(t);
    e.eps_mse.push_back(chain.alpha_bar(t) / chain.one_minus_alpha_bar(t) * trace);
    if (t >= 2) {
      const auto post = chain.posterior(t);
      e.transitions.push_back(post.x0_coefficient * post.x0_coefficient * trace /
                              (2 * post.variance));
      e.transitions_se.push_back(Scalar(0));
    }
  }
  const Scalar beta_1 = chain.betas().front();
  e.decoder = posterior_trace(1) / (2 * beta_1) +
              d / 2 * log(2 * boost::math::constants::pi<Scalar>() * beta_1);
  return e;
}

// E log N(x0; mean, cov) over the same Gaussian: -(d log 2 pi + log det cov + d) / 2.
template <class Scalar>
Scalar gaussian_expected_log_density(const Mat<Scalar>& cov) {
  using std::log;
  const Scalar d = Scalar(static_cast<int>(cov.rows()));
  const Vec<Scalar> s = Eigen::SelfAdjointEigenSolver<Mat<Scalar>>(cov).eigenvalues();
  Scalar log_det = 0;
  for (Eigen::Index i = 0; i < s.size(); ++i) log_det += log(s(i));
  return -(d * log(2 * boost::math::constants::pi<Scalar>()) + log_det + d) / 2;
}

// Mean and standard error of the columns' values.
template <class Scalar>
std::pair<Scalar, Scalar> mean_and_standard_error(const Vec<Scalar>& v) {
  using std::sqrt;
  const Scalar n = Scalar(static_cast<int>(v.size()));
  const Scalar mean = v.sum() / n;
  const Scalar var = (v.array() - mean).square().sum() / (n - 1);
  return {mean, sqrt(var / n)};
}

// Monte Carlo over `samples` fresh pairs (x0, eps) per term, x0 from the data and x0_hat from
// `model` (the exact mixture model, or any other): every term of ElboTerms with its standard
// error. Deterministic for a seed. `steps_to_sample`, when not empty, restricts the L_{t-1}
// estimates to those t (the others are NaN).
template <class Scalar>
ElboTerms<Scalar> monte_carlo_elbo(const VpDiscrete<Scalar>& chain,
                                   const GaussianMixture<Scalar>& data,
                                   const Denoiser<Scalar>& model, int samples, std::uint64_t seed,
                                   const std::vector<int>& steps_to_sample = {}) {
  using std::log;
  using std::sqrt;
  const int steps = chain.steps(), d = data.dim();
  Rng rng(seed);
  ElboTerms<Scalar> e;
  // x0_hat at step t (its time t / T) for x_t = sqrt(abar) x0 + sqrt(1 - abar) eps.
  auto x0_error = [&](int t, const Mat<Scalar>& x0) {
    const Scalar time = chain.step_time(t), a = chain.alpha(time), s = chain.sigma(time);
    const Mat<Scalar> eps = rng.normal_matrix<Scalar>(d, x0.cols());
    const Mat<Scalar> xt = a * x0 + s * eps;
    const Mat<Scalar> score = model.score(xt, time);
    const Mat<Scalar> x0_hat = (xt + s * s * score) / a;
    return Vec<Scalar>((x0 - x0_hat).colwise().squaredNorm().transpose());
  };
  {
    const Mat<Scalar> x0 = data.sample(samples, rng);
    const Scalar abar = chain.alpha_bar(steps);
    const Vec<Scalar> kl = ((abar * x0.colwise().squaredNorm().transpose()).array() -
                            Scalar(d) * abar - Scalar(d) * log(chain.one_minus_alpha_bar(steps))) /
                           2;
    std::tie(e.prior, e.prior_se) = mean_and_standard_error<Scalar>(kl);
  }
  const Scalar nan = std::numeric_limits<Scalar>::quiet_NaN();
  for (int t = 1; t <= steps; ++t) {
    const bool wanted =
        steps_to_sample.empty() ||
        std::find(steps_to_sample.begin(), steps_to_sample.end(), t) != steps_to_sample.end();
    if (!wanted && t >= 2) {
      e.transitions.push_back(nan);
      e.transitions_se.push_back(nan);
      e.eps_mse.push_back(nan);
      continue;
    }
    const Mat<Scalar> x0 = data.sample(samples, rng);
    const Vec<Scalar> sq = x0_error(t, x0);
    e.eps_mse.push_back(chain.alpha_bar(t) / chain.one_minus_alpha_bar(t) * sq.sum() /
                        Scalar(samples));
    if (t == 1) {
      const Scalar beta_1 = chain.betas().front();
      const Vec<Scalar> nll =
          (sq / (2 * beta_1)).array() +
          Scalar(d) / 2 * log(2 * boost::math::constants::pi<Scalar>() * beta_1);
      std::tie(e.decoder, e.decoder_se) = mean_and_standard_error<Scalar>(nll);
    } else {
      const auto post = chain.posterior(t);
      const Vec<Scalar> kl = sq * (post.x0_coefficient * post.x0_coefficient / (2 * post.variance));
      const auto [m, se] = mean_and_standard_error<Scalar>(kl);
      e.transitions.push_back(m);
      e.transitions_se.push_back(se);
    }
  }
  return e;
}

}  // namespace pflow
