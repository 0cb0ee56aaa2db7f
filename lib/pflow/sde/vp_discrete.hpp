// Discrete-time VP (DDPM's chain) in continuous time (docs/NOTES.md sec. 15).
//
// Betas beta_1 .. beta_N in (0, 1), non-decreasing; alpha-bar_i = prod_{j <= i} (1 - beta_j) with
// alpha-bar_0 = 1. Step i sits at t_i = i / N and log alpha(t) is piecewise linear in t through
// the knots (t_i, log sqrt(alpha-bar_i)), the interpolation the reference DPM-Solver code uses for
// discrete-time models, so every continuous-time solver runs on the chain and an integer-step
// grid meets the chain's alpha-bar exactly. Below t_1 the reference extrapolates its first segment
// (alpha > 1 at t = 0 for increasing betas, where sigma is undefined); here the segment [0, t_1]
// ends at alpha(0) = 1 instead, the data. On [t_1, 1] the two agree.
// VP: sigma = sqrt(1 - alpha^2), f = d log alpha / dt (piecewise constant), g^2 = -2 f.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "pflow/sde/scalar_sdes.hpp"

namespace pflow {

template <class Scalar>
class VpDiscrete : public ScalarSde<Scalar> {
 public:
  VpDiscrete(const std::vector<Scalar>& betas, int data_dim)
      : ScalarSde<Scalar>(data_dim), betas_(betas) {
    using std::log;
    require(!betas.empty(), "betas", "[]", "needs at least one beta");
    log_alpha_.push_back(Scalar(0));
    for (size_t i = 0; i < betas.size(); ++i) {
      const std::string at = "betas[" + std::to_string(i) + "]";
      require(betas[i] > 0 && betas[i] < 1, at, betas[i], "must lie in (0, 1)");
      if (i > 0 && betas[i] < betas[i - 1])
        throw InputError(at, to_text(betas[i]),
                         "betas must not decrease (betas[" + std::to_string(i - 1) +
                             "] = " + to_text(betas[i - 1]) + ")");
      // log sqrt(alpha-bar_i) = sum_j log(1 - beta_j) / 2
      log_alpha_.push_back(log_alpha_.back() + boost::math::log1p(Scalar(-betas[i])) / 2);
    }
  }
  std::string name() const override { return "vp-discrete"; }
  Scalar t_max() const override { return 1; }

  int steps() const { return static_cast<int>(betas_.size()); }  // N
  const std::vector<Scalar>& betas() const { return betas_; }
  // alpha-bar_i, i = 0 .. N (alpha-bar_0 = 1).
  Scalar alpha_bar(int i) const {
    using std::exp;
    return exp(2 * log_alpha_.at(static_cast<size_t>(i)));
  }
  // t_i = i / N.
  // 1 - alpha-bar_i = -expm1(2 log sqrt(alpha-bar_i)), without cancellation at small i.
  Scalar one_minus_alpha_bar(int i) const {
    return -boost::math::expm1(Scalar(2 * log_alpha_.at(static_cast<size_t>(i))));
  }
  Scalar step_time(int i) const { return Scalar(i) / Scalar(steps()); }

  Scalar log_alpha(const Scalar& t) const {
    const int k = segment(t);
    const Scalar u = t * Scalar(steps()) - Scalar(k);
    return log_alpha_[k] + u * (log_alpha_[k + 1] - log_alpha_[k]);
  }
  Scalar alpha(const Scalar& t) const override {
    using std::exp;
    return exp(log_alpha(t));
  }
  Scalar sigma(const Scalar& t) const override {
    using std::sqrt;
    return sqrt(Scalar(-boost::math::expm1(Scalar(2 * log_alpha(t)))));
  }
  Scalar lambda(const Scalar& t) const override {
    using std::log;
    const Scalar la = log_alpha(t);
    return la - log(Scalar(-boost::math::expm1(Scalar(2 * la)))) / 2;
  }
  // VP: log alpha = -softplus(-2 lambda) / 2; then the linear piece that holds it.
  Scalar t_of_lambda(const Scalar& lambda) const override {
    const Scalar la = -softplus<Scalar>(-2 * lambda) / 2;
    // log alpha decreases with the knot index: the first knot at or below la ends the segment.
    const auto below = std::find_if(log_alpha_.begin() + 1, log_alpha_.end(),
                                    [&](const Scalar& v) { return v <= la; });
    const int k =
        below == log_alpha_.end() ? steps() - 1 : static_cast<int>(below - log_alpha_.begin()) - 1;
    const Scalar u = (la - log_alpha_[k]) / (log_alpha_[k + 1] - log_alpha_[k]);
    return (Scalar(k) + u) / Scalar(steps());
  }
  // The slope of the piece that holds t (the piece to the right at a knot).
  Scalar f(const Scalar& t) const override {
    const int k = segment(t);
    return Scalar(steps()) * (log_alpha_[k + 1] - log_alpha_[k]);
  }
  Scalar g2(const Scalar& t) const override { return -2 * f(t); }

  // DDPM's posterior q(x_{i-1} | x_i, x_0) = N(a x_i + b x_0, v I), i = 1 .. N (Ho et al. 2020,
  // eq. 6 and 7): a = sqrt(1 - beta_i) (1 - abar_{i-1}) / (1 - abar_i),
  // b = sqrt(abar_{i-1}) beta_i / (1 - abar_i), v = beta-tilde_i = (1 - abar_{i-1}) beta_i /
  // (1 - abar_i). 1 - abar = -expm1(2 log alpha): no cancellation at small i.
  struct Posterior {
    Scalar x_coefficient, x0_coefficient, variance;
  };
  Posterior posterior(int i) const {
    using std::exp;
    using std::sqrt;
    require(i >= 1 && i <= steps(), "step", i, "must be 1 to N = " + std::to_string(steps()));
    const Scalar beta = betas_[static_cast<size_t>(i - 1)];
    const Scalar one_minus_now = -boost::math::expm1(Scalar(2 * log_alpha_[i]));
    const Scalar one_minus_before = -boost::math::expm1(Scalar(2 * log_alpha_[i - 1]));
    return {sqrt(Scalar(1 - beta)) * one_minus_before / one_minus_now,
            exp(log_alpha_[i - 1]) * beta / one_minus_now, one_minus_before * beta / one_minus_now};
  }
  // VP: F = -B'/2, G G^T = B' with the clock B = -2 log alpha.
  std::optional<VanLoanForm<Scalar>> van_loan_form() const override {
    auto self = *this;
    return VanLoanForm<Scalar>{[self](const Scalar& t) { return -2 * self.log_alpha(t); },
                               this->shared(ratio<Scalar>(-1, 2)),
                               {{Scalar(1), Scalar(0), this->unit()}}};
  }

 private:
  // The piece [k / N, (k + 1) / N] that holds t, k in 0 .. N - 1 (the last one beyond t = 1).
  int segment(const Scalar& t) const {
    const double at = to_double(Scalar(t * Scalar(steps())));
    return std::clamp(static_cast<int>(std::floor(at)), 0, steps() - 1);
  }

  std::vector<Scalar> betas_;
  std::vector<Scalar> log_alpha_;  // knots: log sqrt(alpha-bar_i), i = 0 .. N
};

// The betas of the named schedules, in the working precision: "linear", DDPM's np.linspace(1e-4,
// 0.02, N) (Ho et al. 2020, whatever N); "vp-linear", the discretisation of the VP SDE with
// beta(t) = b0 + (b1 - b0) t that Song et al. 2021 (sec. 3.4) pair with it, beta_i = b0 / N +
// (i - 1) (b1 - b0) / (N (N - 1)) (b0 = 0.1, b1 = 20: DDPM's linear schedule at N = 1000), whose
// chain tends to vp-linear as N grows; "cosine", beta_i = min(1 - abar(i) / abar(i - 1), 0.999)
// with abar(i) = cos^2((i / N + s) / (1 + s) pi / 2), s = 0.008 (Nichol & Dhariwal 2021, eq. 17).
template <class Scalar>
std::vector<Scalar> discrete_betas(const std::string& schedule, int n, const Scalar& b0 = 0.1,
                                   const Scalar& b1 = 20) {
  std::vector<Scalar> betas;
  if (schedule == "linear" || schedule == "vp-linear") {
    const bool vp = schedule == "vp-linear";
    const Scalar lo = vp ? Scalar(b0 / Scalar(n)) : ratio<Scalar>(1, 10000);
    const Scalar hi = vp ? Scalar(b1 / Scalar(n)) : ratio<Scalar>(1, 50);
    for (int i = 0; i < n; ++i)
      betas.push_back(n == 1 ? lo : lo + (hi - lo) * Scalar(i) / Scalar(n - 1));
    return betas;
  }
  using std::cos;
  const Scalar s = ratio<Scalar>(8, 1000);
  auto abar = [&](int i) {
    const Scalar c = cos((Scalar(i) / Scalar(n) + s) / (1 + s) * pi<Scalar>() / 2);
    return c * c;
  };
  for (int i = 1; i <= n; ++i)
    betas.push_back(std::min(Scalar(1 - abar(i) / abar(i - 1)), ratio<Scalar>(999, 1000)));
  return betas;
}

}  // namespace pflow
