// Linear forward SDEs dx = F(t) x dt + G(t) dw (docs/NOTES.md sec. 1).
//
// An SDE works in its own "spectral" coordinates z = U^T x (U orthogonal; the identity for all
// but the blurring SDE, where U is the 2-D DCT), in which F, G G^T, Psi and Sigma are
// BlockMatrix objects that keep their structure. The state x in R^D holds the data (and, for
// CLD, the velocities: D = 2d).
//
//   auto sde = VpLinear<double>(0.1, 20.0, /*data_dim=*/2);
//   BlockMatrix<double> psi = sde.transition(0.5, 0.2);  // Psi(0.5, 0.2)
//   BlockMatrix<double> cov = sde.covariance(0.5);       // Sigma(0.5)
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pflow/core/block_matrix.hpp"
#include "pflow/core/linalg.hpp"

namespace pflow {

// The Van Loan form of an SDE: there is a clock B(t) (B(0) = 0, increasing) with
//   F(t) = B'(t) Fbar,   G G^T(t) = B'(t) sum_j c_j exp(k_j B(t)) Qbar_j,
// so that Psi and Sigma follow from block exponentials in the clock variable (Van Loan 1978).
template <class Scalar>
struct VanLoanForm {
  struct DiffusionTerm {
    Scalar coeff;                        // c_j
    Scalar rate;                         // k_j
    BlockMatrix<Scalar> diffusion_rate;  // Qbar_j
  };
  std::function<Scalar(const Scalar&)> clock;
  BlockMatrix<Scalar> drift_rate;  // Fbar
  std::vector<DiffusionTerm> terms;
};

template <class Scalar>
class LinearSde {
 public:
  virtual ~LinearSde() = default;

  virtual std::string name() const = 0;
  // Dimension of the data x0 and of the state (2 * data_dim for CLD).
  int data_dim() const { return data_dim_; }
  int state_dim() const { return groups_ * block_; }
  int groups() const { return groups_; }
  int block_size() const { return block_; }
  // Latest time at which the SDE is defined (T).
  virtual Scalar t_max() const = 0;

  // Coefficients in spectral coordinates.
  virtual BlockMatrix<Scalar> drift(const Scalar& t) const = 0;      // F(t)
  virtual BlockMatrix<Scalar> diffusion(const Scalar& t) const = 0;  // G(t) G(t)^T
  virtual BlockMatrix<Scalar> initial_covariance() const {           // Sigma(0)
    return BlockMatrix<Scalar>::zero(groups_, block_);
  }

  // Closed forms where they exist; std::nullopt otherwise.
  virtual std::optional<BlockMatrix<Scalar>> closed_transition(const Scalar&, const Scalar&) const {
    return std::nullopt;
  }
  virtual std::optional<BlockMatrix<Scalar>> closed_covariance(const Scalar&) const {
    return std::nullopt;
  }
  virtual std::optional<VanLoanForm<Scalar>> van_loan_form() const { return std::nullopt; }

  // Psi(t, s) and Sigma(t): the closed form, else Van Loan's block exponential.
  BlockMatrix<Scalar> transition(const Scalar& t, const Scalar& s) const;
  BlockMatrix<Scalar> covariance(const Scalar& t) const;
  // Mean of the perturbation kernel m(t) = Psi(t, 0) lift(x0) for data x0 (d x n), returned
  // as ambient states (D x n).
  Mat<Scalar> mean(const Scalar& t, const Mat<Scalar>& x0) const {
    return from_spectral(transition(t, Scalar(0)).apply(lift_data(x0)));
  }

  // Spectral basis: z = U^T x on D x n matrices (particles as columns).
  virtual Mat<Scalar> to_spectral(const Mat<Scalar>& x) const { return x; }
  virtual Mat<Scalar> from_spectral(const Mat<Scalar>& z) const { return z; }
  virtual bool has_spectral_basis() const { return false; }

  // Lifts data vectors (d x n) into the state (D x n), and data covariances (d x d) into
  // state covariances, both in spectral coordinates. CLD puts zero velocity mean and no
  // data-velocity covariance; its velocity prior is part of initial_covariance().
  virtual Mat<Scalar> lift_data(const Mat<Scalar>& x0) const { return to_spectral(x0); }
  virtual BlockMatrix<Scalar> lift_covariance(const BlockMatrix<Scalar>& s0) const;
  // Marginal covariance of data with covariance s0: C = Psi lift(s0) Psi^T + Sigma, given
  // psi = Psi(t, 0) and sigma = Sigma(t) (docs/NOTES.md sec. 3).
  BlockMatrix<Scalar> marginal_covariance(const BlockMatrix<Scalar>& s0,
                                          const BlockMatrix<Scalar>& psi,
                                          const BlockMatrix<Scalar>& sigma) const {
    return (psi * lift_covariance(s0) * psi.transpose() + sigma).symmetrized();
  }
  // The data part of a state (inverse of lift_data on its range).
  virtual Mat<Scalar> data_part(const Mat<Scalar>& z) const { return from_spectral(z); }

  // Applies a spectral-coordinate operator to ambient states: U B U^T x.
  Mat<Scalar> apply(const BlockMatrix<Scalar>& b, const Mat<Scalar>& x) const {
    if (!has_spectral_basis()) return b.apply(x);
    return from_spectral(b.apply(to_spectral(x)));
  }

 protected:
  LinearSde(int data_dim, int groups, int block)
      : data_dim_(data_dim), groups_(groups), block_(block) {
    require(data_dim > 0, "data_dim", data_dim, "must be positive");
  }

 private:
  int data_dim_;
  int groups_;
  int block_;
};

// int_0^B exp((B - r) A) Q exp((B - r) A^T) dr by Van Loan's block exponential:
// expm([[-A, Q], [0, A^T]] B) = [[., E12], [0, E22]] and the integral is E22^T E12.
template <class Scalar>
Mat<Scalar> van_loan_integral(const Mat<Scalar>& a, const Mat<Scalar>& q, const Scalar& b) {
  const Eigen::Index n = a.rows();
  Mat<Scalar> m = Mat<Scalar>::Zero(2 * n, 2 * n);
  m.topLeftCorner(n, n) = -a * b;
  m.topRightCorner(n, n) = q * b;
  m.bottomRightCorner(n, n) = a.transpose() * b;
  const Mat<Scalar> e = expm(m);
  return e.bottomRightCorner(n, n).transpose() * e.topRightCorner(n, n);
}

// Psi(t, s) = exp((B(t) - B(s)) Fbar), block by block.
template <class Scalar>
BlockMatrix<Scalar> van_loan_transition(const VanLoanForm<Scalar>& form, const Scalar& t,
                                        const Scalar& s) {
  const Scalar db = form.clock(t) - form.clock(s);
  return form.drift_rate.map([&](const Mat<Scalar>& fbar) { return expm<Scalar>(fbar * db); });
}

// Sigma(t) = Psi(t,0) Sigma_0 Psi(t,0)^T + sum_j c_j e^{k_j B} VL(Fbar - k_j/2 I, Qbar_j, B):
// the factor e^{k_j r} of the diffusion is absorbed by shifting the drift of the integrand.
template <class Scalar>
BlockMatrix<Scalar> van_loan_covariance(const VanLoanForm<Scalar>& form,
                                        const BlockMatrix<Scalar>& sigma0, const Scalar& t) {
  using std::exp;
  const Scalar b = form.clock(t);
  const BlockMatrix<Scalar> psi = van_loan_transition(form, t, Scalar(0));
  BlockMatrix<Scalar> total = psi * sigma0 * psi.transpose();
  for (const auto& term : form.terms) {
    // Pair Fbar and Qbar_j block by block (both share the SDE's structure).
    const BlockMatrix<Scalar> shifted =
        form.drift_rate -
        BlockMatrix<Scalar>::identity(form.drift_rate.groups(), form.drift_rate.block_size())
            .scaled(term.rate / 2);
    const int nb = std::max(shifted.stored_blocks(), term.diffusion_rate.stored_blocks());
    std::vector<Mat<Scalar>> blocks(nb);
    for (int k = 0; k < nb; ++k)
      blocks[k] = van_loan_integral<Scalar>(shifted.block(k), term.diffusion_rate.block(k), b);
    const BlockMatrix<Scalar> pair = nb == 1
                                         ? BlockMatrix<Scalar>::shared(shifted.groups(), blocks[0])
                                         : BlockMatrix<Scalar>::per_group(std::move(blocks));
    total = total + pair.scaled(term.coeff * exp(term.rate * b));
  }
  return total.symmetrized();
}

template <class Scalar>
BlockMatrix<Scalar> LinearSde<Scalar>::transition(const Scalar& t, const Scalar& s) const {
  if (auto closed = closed_transition(t, s)) return *closed;
  if (auto form = van_loan_form()) return van_loan_transition(*form, t, s);
  throw NumericalError(name() + ": no closed form or Van Loan form for the transition");
}

template <class Scalar>
BlockMatrix<Scalar> LinearSde<Scalar>::covariance(const Scalar& t) const {
  if (auto closed = closed_covariance(t)) return *closed;
  if (auto form = van_loan_form()) return van_loan_covariance(*form, initial_covariance(), t);
  throw NumericalError(name() + ": no closed form or Van Loan form for the covariance");
}

template <class Scalar>
BlockMatrix<Scalar> LinearSde<Scalar>::lift_covariance(const BlockMatrix<Scalar>& s0) const {
  if (!has_spectral_basis()) return s0;
  // U^T S U, kept shared when S is a multiple of the identity.
  if (s0.is_shared() && s0.block_size() == 1) return s0;
  const Mat<Scalar> dense = s0.to_dense();
  return BlockMatrix<Scalar>::dense(to_spectral(Mat<Scalar>(to_spectral(dense).transpose())));
}

}  // namespace pflow
