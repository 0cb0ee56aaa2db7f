// Critically-damped Langevin diffusion (Dockhorn et al. 2022), docs/NOTES.md sec. 1 "CLD".
//
// State u = (x, v) in R^{2d}: x_i at index i, v_i at index d + i (group i, block of 2).
// F = beta [[0, 1/M], [-1, -Gamma/M]], G G^T = diag(0, 2 Gamma beta), Gamma = 2 sqrt(M)
// (critical damping), Sigma(0) = diag(0, gamma M): the velocity prior.
#pragma once

#include <cmath>

#include "pflow/sde/sde.hpp"

namespace pflow {

template <class Scalar>
class Cld : public LinearSde<Scalar> {
 public:
  Cld(const Scalar& beta, const Scalar& mass, const Scalar& gamma, int data_dim)
      : LinearSde<Scalar>(data_dim, data_dim, 2), beta_(beta), mass_(mass), gamma_(gamma) {
    using std::sqrt;
    require(beta > 0, "beta", beta, "must be positive");
    require(mass > 0, "M", mass, "must be positive");
    require(gamma >= 0, "gamma", gamma, "must be non-negative");
    damping_ = 2 * sqrt(mass);
  }
  std::string name() const override { return "cld"; }
  Scalar t_max() const override { return 1; }
  Scalar beta() const { return beta_; }
  Scalar mass() const { return mass_; }
  Scalar damping() const { return damping_; }  // Gamma

  BlockMatrix<Scalar> drift(const Scalar&) const override { return shared(drift_rate() * beta_); }
  BlockMatrix<Scalar> diffusion(const Scalar&) const override {
    return shared(diffusion_rate() * beta_);
  }
  BlockMatrix<Scalar> initial_covariance() const override {
    Mat<Scalar> s0 = Mat<Scalar>::Zero(2, 2);
    s0(1, 1) = gamma_ * mass_;
    return shared(s0);
  }

  // Psi(t, s) = e^{-2B/Gamma} [[1 + 2B/Gamma, 4B/Gamma^2], [-B, 1 - 2B/Gamma]], B = beta (t - s).
  std::optional<BlockMatrix<Scalar>> closed_transition(const Scalar& t,
                                                       const Scalar& s) const override {
    using std::exp;
    const Scalar b = beta_ * (t - s), g = damping_;
    Mat<Scalar> psi(2, 2);
    psi << 1 + 2 * b / g, 4 * b / (g * g), -b, 1 - 2 * b / g;
    return shared(psi * exp(-2 * b / g));
  }

  // The closed form of docs/NOTES.md sec. 1 with S_xx = 0, S_vv = gamma M.
  std::optional<BlockMatrix<Scalar>> closed_covariance(const Scalar& t) const override {
    return shared(covariance_from(beta_ * t, Scalar(0), gamma_ * mass_));
  }

  // Sigma(B) from an initial diag(S_xx, S_vv), m = e^{-4B/Gamma}.
  Mat<Scalar> covariance_from(const Scalar& b, const Scalar& sxx, const Scalar& svv) const {
    using std::exp;
    const Scalar g = damping_, m = exp(-4 * b / g);
    const Scalar g2 = g * g, g3 = g2 * g, g4 = g2 * g2, b2 = b * b;
    const Scalar xx = m * (sxx + (1 / m - 1) + 4 * b / g * (sxx - 1) + 4 * b2 / g2 * (sxx - 2) +
                           16 * b2 / g4 * svv);
    const Scalar xv =
        m * (-sxx * b + 4 * b / g2 * svv - 2 * b2 / g * (sxx - 2) - 8 * b2 / g3 * svv);
    const Scalar vv = m * (g2 / 4 * (1 / m - 1) + g * b - 4 * b / g * svv + 4 * b2 / g2 * svv +
                           svv + b2 * (sxx - 2));
    Mat<Scalar> out(2, 2);
    out << xx, xv, xv, vv;
    return out;
  }

  std::optional<VanLoanForm<Scalar>> van_loan_form() const override {
    const Scalar beta = beta_;
    return VanLoanForm<Scalar>{[beta](const Scalar& t) { return beta * t; },
                               shared(drift_rate()),
                               {{Scalar(1), Scalar(0), shared(diffusion_rate())}}};
  }

  // Data x0 -> (x0, 0); the velocity prior is in initial_covariance().
  Mat<Scalar> lift_data(const Mat<Scalar>& x0) const override {
    Mat<Scalar> u = Mat<Scalar>::Zero(this->state_dim(), x0.cols());
    u.topRows(this->data_dim()) = x0;
    return u;
  }
  Mat<Scalar> data_part(const Mat<Scalar>& u) const override { return u.topRows(this->data_dim()); }
  // S -> [[S, 0], [0, 0]] keeping S's structure where it is diagonal.
  BlockMatrix<Scalar> lift_covariance(const BlockMatrix<Scalar>& s0) const override {
    if (s0.block_size() == 1 && s0.groups() == this->data_dim()) {
      return s0.map([](const Mat<Scalar>& b) {
        Mat<Scalar> out = Mat<Scalar>::Zero(2, 2);
        out(0, 0) = b(0, 0);
        return out;
      });
    }
    const int d = this->data_dim();
    Mat<Scalar> out = Mat<Scalar>::Zero(2 * d, 2 * d);
    out.topLeftCorner(d, d) = s0.to_dense();
    return BlockMatrix<Scalar>::dense(out);
  }

 private:
  Mat<Scalar> drift_rate() const {
    Mat<Scalar> f(2, 2);
    f << 0, 1 / mass_, -1, -damping_ / mass_;
    return f;
  }
  Mat<Scalar> diffusion_rate() const {
    Mat<Scalar> q = Mat<Scalar>::Zero(2, 2);
    q(1, 1) = 2 * damping_;
    return q;
  }
  BlockMatrix<Scalar> shared(const Mat<Scalar>& b) const {
    return BlockMatrix<Scalar>::shared(this->groups(), b);
  }

  Scalar beta_, mass_, gamma_, damping_;
};

}  // namespace pflow
