// The generic linear SDE: constant matrices Fbar, Gbar and a scalar rate
// beta(t) = beta_min + (beta_max - beta_min) t, with F = beta(t) Fbar and
// G G^T = beta(t) Gbar Gbar^T. No closed form is assumed: Psi and Sigma come from Van Loan's
// block exponential in the clock B(t) = int_0^t beta (and are checked against the Lyapunov ODE).
#pragma once

#include "pflow/sde/scalar_sdes.hpp"

namespace pflow {

template <class Scalar>
class GenericLinear : public LinearSde<Scalar> {
 public:
  GenericLinear(Mat<Scalar> fbar, const Mat<Scalar>& gbar, const Scalar& beta_min,
                const Scalar& beta_max, Mat<Scalar> sigma0 = Mat<Scalar>())
      : LinearSde<Scalar>(static_cast<int>(fbar.rows()), 1, static_cast<int>(fbar.rows())),
        fbar_(std::move(fbar)),
        rate_(LinearBeta<Scalar>::checked(beta_min, beta_max)) {
    const Eigen::Index n = fbar_.rows();
    require(fbar_.cols() == n, "Fbar", to_text(fbar_.rows()) + "x" + to_text(fbar_.cols()),
            "must be square");
    require(gbar.rows() == n, "Gbar rows", gbar.rows(), "must equal Fbar's size " + to_text(n));
    qbar_ = gbar * gbar.transpose();
    sigma0_ = sigma0.size() == 0 ? Mat<Scalar>::Zero(n, n) : std::move(sigma0);
    require(sigma0_.rows() == n && sigma0_.cols() == n, "Sigma0",
            to_text(sigma0_.rows()) + "x" + to_text(sigma0_.cols()),
            "must be " + to_text(n) + "x" + to_text(n));
  }
  std::string name() const override { return "linear"; }
  Scalar t_max() const override { return 1; }
  BlockMatrix<Scalar> drift(const Scalar& t) const override {
    return BlockMatrix<Scalar>::dense(fbar_ * rate_.beta(t));
  }
  BlockMatrix<Scalar> diffusion(const Scalar& t) const override {
    return BlockMatrix<Scalar>::dense(qbar_ * rate_.beta(t));
  }
  BlockMatrix<Scalar> initial_covariance() const override {
    return BlockMatrix<Scalar>::dense(sigma0_);
  }
  std::optional<VanLoanForm<Scalar>> van_loan_form() const override {
    auto r = rate_;
    return VanLoanForm<Scalar>{[r](const Scalar& t) { return r.integral(t); },
                               BlockMatrix<Scalar>::dense(fbar_),
                               {{Scalar(1), Scalar(0), BlockMatrix<Scalar>::dense(qbar_)}}};
  }

 private:
  Mat<Scalar> fbar_, qbar_, sigma0_;
  LinearBeta<Scalar> rate_;
};

}  // namespace pflow
