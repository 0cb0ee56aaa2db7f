// Scalar SDEs: F = f(t) I, G = g(t) I (docs/NOTES.md sec. 1, "Scalar family").
//
// alpha_t = exp(int_0^t f), sigma_t^2 = alpha_t^2 (sigma_0^2 + int_0^t g^2 / alpha^2),
// lambda_t = log(alpha_t / sigma_t) with a closed-form inverse t(lambda). Each coordinate of
// R^d is one group with one shared 1x1 block.
#pragma once

#include <cmath>

#include <boost/math/special_functions/log1p.hpp>

#include "pflow/sde/sde.hpp"

namespace pflow {

template <class Scalar>
class ScalarSde : public LinearSde<Scalar> {
 public:
  virtual Scalar alpha(const Scalar& t) const = 0;
  virtual Scalar sigma(const Scalar& t) const = 0;
  virtual Scalar lambda(const Scalar& t) const { return log_(alpha(t)) - log_(sigma(t)); }
  // The closed-form inverse of lambda(t).
  virtual Scalar t_of_lambda(const Scalar& lambda) const = 0;
  virtual Scalar f(const Scalar& t) const = 0;   // d log alpha / dt
  virtual Scalar g2(const Scalar& t) const = 0;  // g(t)^2

  BlockMatrix<Scalar> drift(const Scalar& t) const override { return shared(f(t)); }
  BlockMatrix<Scalar> diffusion(const Scalar& t) const override { return shared(g2(t)); }
  BlockMatrix<Scalar> initial_covariance() const override {
    const Scalar s0 = sigma(Scalar(0));
    return shared(s0 * s0);
  }
  std::optional<BlockMatrix<Scalar>> closed_transition(const Scalar& t,
                                                       const Scalar& s) const override {
    return shared(alpha(t) / alpha(s));
  }
  std::optional<BlockMatrix<Scalar>> closed_covariance(const Scalar& t) const override {
    const Scalar s = sigma(t);
    return shared(s * s);
  }

 protected:
  explicit ScalarSde(int data_dim) : LinearSde<Scalar>(data_dim, data_dim, 1) {}
  BlockMatrix<Scalar> shared(const Scalar& v) const {
    return BlockMatrix<Scalar>::shared(this->groups(), Mat<Scalar>::Constant(1, 1, v));
  }
  static Scalar log_(const Scalar& x) {
    using std::log;
    return log(x);
  }
  BlockMatrix<Scalar> unit() const { return shared(Scalar(1)); }
};

// Integrated linear rate B(t) = int_0^t beta, beta(t) = b0 + (b1 - b0) t.
template <class Scalar>
struct LinearBeta {
  Scalar b0, b1;
  Scalar beta(const Scalar& t) const { return b0 + (b1 - b0) * t; }
  Scalar integral(const Scalar& t) const { return b0 * t + (b1 - b0) * t * t / 2; }
  // Solves integral(t) = 2 L for t >= 0, in the cancellation-free form 2L / (b0/2 + sqrt(.)).
  Scalar t_of_half_integral(const Scalar& l) const {
    using std::sqrt;
    return 2 * l / (b0 / 2 + sqrt(b0 * b0 / 4 + (b1 - b0) * l));
  }
  static LinearBeta checked(const Scalar& b0, const Scalar& b1) {
    require(b0 >= 0, "beta_min", b0, "must be non-negative");
    require(b1 > 0, "beta_max", b1, "must be positive");
    return {b0, b1};
  }
};

// VP with linear beta (DDPM / score-SDE VP): alpha = exp(-B/2), sigma = sqrt(1 - alpha^2).
template <class Scalar>
class VpLinear : public ScalarSde<Scalar> {
 public:
  VpLinear(const Scalar& beta_min, const Scalar& beta_max, int data_dim)
      : ScalarSde<Scalar>(data_dim), rate_(LinearBeta<Scalar>::checked(beta_min, beta_max)) {}
  std::string name() const override { return "vp-linear"; }
  Scalar t_max() const override { return 1; }
  Scalar alpha(const Scalar& t) const override {
    using std::exp;
    return exp(-rate_.integral(t) / 2);
  }
  Scalar sigma(const Scalar& t) const override {
    using std::sqrt;
    return sqrt(Scalar(-boost::math::expm1(Scalar(-rate_.integral(t)))));
  }
  Scalar lambda(const Scalar& t) const override {
    using std::log;
    const Scalar b = rate_.integral(t);
    return -b / 2 - log(Scalar(-boost::math::expm1(Scalar(-b)))) / 2;
  }
  // alpha^2 = 1 / (1 + e^{-2 lambda}) so -log alpha = softplus(-2 lambda) / 2 = B / 2.
  Scalar t_of_lambda(const Scalar& lambda) const override {
    return rate_.t_of_half_integral(softplus<Scalar>(-2 * lambda) / 2);
  }
  Scalar f(const Scalar& t) const override { return -rate_.beta(t) / 2; }
  Scalar g2(const Scalar& t) const override { return rate_.beta(t); }
  std::optional<VanLoanForm<Scalar>> van_loan_form() const override {
    auto r = rate_;
    return VanLoanForm<Scalar>{[r](const Scalar& t) { return r.integral(t); },
                               this->shared(ratio<Scalar>(-1, 2)),
                               {{Scalar(1), Scalar(0), this->unit()}}};
  }
  const LinearBeta<Scalar>& rate() const { return rate_; }

 private:
  LinearBeta<Scalar> rate_;
};

// Sub-VP (Song et al. 2021): alpha as VP linear, sigma = 1 - alpha^2,
// g^2 = beta (1 - e^{-2B}).
template <class Scalar>
class SubVp : public ScalarSde<Scalar> {
 public:
  SubVp(const Scalar& beta_min, const Scalar& beta_max, int data_dim)
      : ScalarSde<Scalar>(data_dim), rate_(LinearBeta<Scalar>::checked(beta_min, beta_max)) {}
  std::string name() const override { return "sub-vp"; }
  Scalar t_max() const override { return 1; }
  Scalar alpha(const Scalar& t) const override {
    using std::exp;
    return exp(-rate_.integral(t) / 2);
  }
  Scalar sigma(const Scalar& t) const override {
    return -boost::math::expm1(Scalar(-rate_.integral(t)));
  }
  Scalar lambda(const Scalar& t) const override {
    using std::log;
    const Scalar b = rate_.integral(t);
    return -b / 2 - log(Scalar(-boost::math::expm1(Scalar(-b))));
  }
  // alpha / (1 - alpha^2) = r = e^lambda  =>  alpha = 2r / (1 + sqrt(1 + 4 r^2)).
  Scalar t_of_lambda(const Scalar& lambda) const override {
    using std::exp;
    using std::log;
    using std::sqrt;
    const Scalar r = exp(lambda);
    const Scalar a = 2 * r / (1 + sqrt(1 + 4 * r * r));
    return rate_.t_of_half_integral(-log(a));
  }
  Scalar f(const Scalar& t) const override { return -rate_.beta(t) / 2; }
  Scalar g2(const Scalar& t) const override {
    return rate_.beta(t) * -boost::math::expm1(Scalar(-2 * rate_.integral(t)));
  }
  // G G^T = B' (1 - e^{-2B}): two Van Loan terms with rates 0 and -2.
  std::optional<VanLoanForm<Scalar>> van_loan_form() const override {
    auto r = rate_;
    return VanLoanForm<Scalar>{
        [r](const Scalar& t) { return r.integral(t); },
        this->shared(ratio<Scalar>(-1, 2)),
        {{Scalar(1), Scalar(0), this->unit()}, {Scalar(-1), Scalar(-2), this->unit()}}};
  }

 private:
  LinearBeta<Scalar> rate_;
};

// VP with the cosine schedule (Nichol & Dhariwal 2021):
// alpha = cos(a(t)) / cos(a(0)), a(t) = pi/2 (t + s)/(1 + s); defined for t < 1.
template <class Scalar>
class VpCosine : public ScalarSde<Scalar> {
 public:
  VpCosine(const Scalar& s, int data_dim) : ScalarSde<Scalar>(data_dim), s_(s) {
    require(s > 0 && s < 1, "s", s, "must lie in (0, 1)");
  }
  std::string name() const override { return "vp-cosine"; }
  // alpha(1) = 0: the SDE is singular at t = 1, so T stops short of it.
  Scalar t_max() const override { return ratio<Scalar>(999, 1000); }
  Scalar angle(const Scalar& t) const { return pi<Scalar>() / 2 * (t + s_) / (1 + s_); }
  Scalar alpha(const Scalar& t) const override {
    using std::cos;
    return cos(angle(t)) / cos(angle(Scalar(0)));
  }
  // 1 - alpha^2 = sin(a - a0) sin(a + a0) / cos^2(a0): no cancellation near t = 0.
  Scalar sigma(const Scalar& t) const override {
    using std::cos;
    using std::sin;
    using std::sqrt;
    const Scalar a = angle(t), a0 = angle(Scalar(0));
    return sqrt(sin(a - a0) * sin(a + a0)) / cos(a0);
  }
  Scalar t_of_lambda(const Scalar& lambda) const override {
    using std::acos;
    using std::cos;
    using std::exp;
    using std::sqrt;
    const Scalar a = exp(-softplus<Scalar>(-2 * lambda) / 2);  // alpha from lambda (VP)
    return (1 + s_) * 2 / pi<Scalar>() * acos(a * cos(angle(Scalar(0)))) - s_;
  }
  Scalar f(const Scalar& t) const override {
    using std::tan;
    return -tan(angle(t)) * pi<Scalar>() / (2 * (1 + s_));
  }
  Scalar g2(const Scalar& t) const override { return -2 * f(t); }
  // VP: F = -B'/2, G G^T = B' with B = -2 log alpha.
  std::optional<VanLoanForm<Scalar>> van_loan_form() const override {
    auto self = *this;
    return VanLoanForm<Scalar>{[self](const Scalar& t) {
                                 using std::log;
                                 return -2 * log(self.alpha(t));
                               },
                               this->shared(ratio<Scalar>(-1, 2)),
                               {{Scalar(1), Scalar(0), this->unit()}}};
  }

 private:
  Scalar s_;
};

// Variance exploding (Song et al. 2021): alpha = 1, sigma = s_min (s_max/s_min)^t. The kernel
// starts from Sigma(0) = s_min^2, as in the score-SDE reference implementation.
template <class Scalar>
class Ve : public ScalarSde<Scalar> {
 public:
  Ve(const Scalar& sigma_min, const Scalar& sigma_max, int data_dim)
      : ScalarSde<Scalar>(data_dim), smin_(sigma_min), smax_(sigma_max) {
    require(sigma_min > 0, "sigma_min", sigma_min, "must be positive");
    require(sigma_max > sigma_min, "sigma_max", sigma_max,
            "must exceed sigma_min = " + to_text(sigma_min));
  }
  std::string name() const override { return "ve"; }
  Scalar t_max() const override { return 1; }
  Scalar alpha(const Scalar&) const override { return 1; }
  Scalar sigma(const Scalar& t) const override {
    using std::exp;
    return smin_ * exp(t * log_ratio());
  }
  Scalar lambda(const Scalar& t) const override {
    using std::log;
    return -log(smin_) - t * log_ratio();
  }
  Scalar t_of_lambda(const Scalar& lambda) const override {
    using std::log;
    return (-lambda - log(smin_)) / log_ratio();
  }
  Scalar f(const Scalar&) const override { return 0; }
  Scalar g2(const Scalar& t) const override {
    const Scalar s = sigma(t);
    return 2 * s * s * log_ratio();
  }
  std::optional<VanLoanForm<Scalar>> van_loan_form() const override {
    auto self = *this;
    return VanLoanForm<Scalar>{[self](const Scalar& t) {
                                 const Scalar s = self.sigma(t);
                                 return s * s - self.smin_ * self.smin_;
                               },
                               this->shared(Scalar(0)),
                               {{Scalar(1), Scalar(0), this->unit()}}};
  }

 private:
  Scalar log_ratio() const {
    using std::log;
    return log(smax_ / smin_);
  }
  Scalar smin_, smax_;
};

// EDM (Karras et al. 2022): alpha = 1, sigma = t; sampling uses t in [sigma_min, sigma_max].
template <class Scalar>
class Edm : public ScalarSde<Scalar> {
 public:
  Edm(const Scalar& sigma_min, const Scalar& sigma_max, int data_dim)
      : ScalarSde<Scalar>(data_dim), smin_(sigma_min), smax_(sigma_max) {
    require(sigma_min > 0, "sigma_min", sigma_min, "must be positive");
    require(sigma_max > sigma_min, "sigma_max", sigma_max,
            "must exceed sigma_min = " + to_text(sigma_min));
  }
  std::string name() const override { return "edm"; }
  Scalar t_max() const override { return smax_; }
  Scalar sigma_min() const { return smin_; }
  Scalar alpha(const Scalar&) const override { return 1; }
  Scalar sigma(const Scalar& t) const override { return t; }
  Scalar lambda(const Scalar& t) const override {
    using std::log;
    return -log(t);
  }
  Scalar t_of_lambda(const Scalar& lambda) const override {
    using std::exp;
    return exp(-lambda);
  }
  Scalar f(const Scalar&) const override { return 0; }
  Scalar g2(const Scalar& t) const override { return 2 * t; }
  std::optional<VanLoanForm<Scalar>> van_loan_form() const override {
    return VanLoanForm<Scalar>{[](const Scalar& t) { return t * t; },
                               this->shared(Scalar(0)),
                               {{Scalar(1), Scalar(0), this->unit()}}};
  }

 private:
  Scalar smin_, smax_;
};

// Rectified flow / flow matching's linear path (Liu et al. 2022; Lipman et al. 2022):
// x_t = (1 - t) x0 + t eps, alpha = 1 - t, sigma = t, lambda = log((1 - t) / t), t = 1 / (1 +
// e^lambda); f = -1 / (1 - t), g^2 = d sigma^2/dt - 2 f sigma^2 = 2 t / (1 - t). Its velocity
// field is d alpha/dt x0 + d sigma/dt eps = eps - x0 (docs/NOTES.md sec. 17).
template <class Scalar>
class RectifiedFlow : public ScalarSde<Scalar> {
 public:
  explicit RectifiedFlow(int data_dim) : ScalarSde<Scalar>(data_dim) {}
  std::string name() const override { return "rectified-flow"; }
  // alpha(1) = 0: the SDE is singular at t = 1, so T stops short of it (as vp-cosine's).
  Scalar t_max() const override { return ratio<Scalar>(999, 1000); }
  Scalar alpha(const Scalar& t) const override { return 1 - t; }
  Scalar sigma(const Scalar& t) const override { return t; }
  // log((1 - t) / t) = log1p(-t) - log(t): no cancellation near t = 0.
  Scalar lambda(const Scalar& t) const override {
    using std::log;
    return Scalar(boost::math::log1p(Scalar(-t))) - log(t);
  }
  Scalar t_of_lambda(const Scalar& lambda) const override {
    using std::exp;
    return 1 / (1 + exp(lambda));
  }
  Scalar f(const Scalar& t) const override { return -1 / (1 - t); }
  Scalar g2(const Scalar& t) const override { return 2 * t / (1 - t); }
  // Clock B = -log(1 - t): F = -B', G G^T = B' 2 t = B' (2 - 2 e^{-B}).
  std::optional<VanLoanForm<Scalar>> van_loan_form() const override {
    return VanLoanForm<Scalar>{
        [](const Scalar& t) { return -Scalar(boost::math::log1p(Scalar(-t))); },
        this->shared(Scalar(-1)),
        {{Scalar(2), Scalar(0), this->unit()}, {Scalar(-2), Scalar(-1), this->unit()}}};
  }
};

}  // namespace pflow
