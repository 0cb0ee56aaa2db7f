// Data distributions with analytic scores: `dirac`, `gaussian` and `gmm` (docs/NOTES.md sec. 3).
//
// All three are Gaussian mixtures sum_k w_k N(mu_k, S_k): a Dirac is one component with
// S = 0, a Gaussian one component. Covariances keep their structure (zero, diagonal or full),
// which decides the structure of the marginal covariances under an SDE.
//
//   auto data = GaussianMixture<double>::gmm(weights, means, covs);   // means: d x K
//   Marginal<double> p(sde, data, 0.5);  // p_t at t = 0.5
//   Mat<double> s = p.score(x);          // x: D x n, particles as columns
#pragma once

#include <algorithm>
#include <memory>
#include <mutex>

#include <string>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>

#include "pflow/core/block_matrix.hpp"
#include "pflow/core/lapack.hpp"
#include "pflow/target/low_rank.hpp"
#include "pflow/target/random.hpp"

namespace pflow {

template <class Scalar>
class GaussianMixture {
 public:
  static GaussianMixture dirac(const Vec<Scalar>& point) {
    GaussianMixture g("dirac", Vec<Scalar>::Ones(1), point);
    g.covs_.push_back(BlockMatrix<Scalar>::zero(g.dim(), 1));
    g.low_ranks_.emplace_back();
    return g;
  }
  static GaussianMixture gaussian(const Vec<Scalar>& mean, const Mat<Scalar>& cov) {
    GaussianMixture g("gaussian", Vec<Scalar>::Ones(1), mean);
    g.add_checked_cov(cov, "cov");
    return g;
  }
  // means: d x K; covs: K full d x d matrices.
  static GaussianMixture gmm(const Vec<Scalar>& weights, const Mat<Scalar>& means,
                             const std::vector<Mat<Scalar>>& covs) {
    GaussianMixture g("gmm", weights, means);
    require(static_cast<Eigen::Index>(covs.size()) == weights.size(), "covs", covs.size(),
            "needs one covariance per weight (" + to_text(weights.size()) + ")");
    for (size_t k = 0; k < covs.size(); ++k) g.add_checked_cov(covs[k], "covs[" + to_text(k) + "]");
    return g;
  }
  // means: d x K; diag_covs: d x K (column k is the diagonal of S_k).
  static GaussianMixture gmm_diagonal(const Vec<Scalar>& weights, const Mat<Scalar>& means,
                                      const Mat<Scalar>& diag_covs) {
    GaussianMixture g("gmm", weights, means);
    require(diag_covs.cols() == weights.size() && diag_covs.rows() == g.dim(), "diag_covs",
            to_text(diag_covs.rows()) + "x" + to_text(diag_covs.cols()),
            "must be " + to_text(g.dim()) + "x" + to_text(weights.size()));
    for (Eigen::Index k = 0; k < diag_covs.cols(); ++k) {
      for (Eigen::Index i = 0; i < diag_covs.rows(); ++i)
        require(diag_covs(i, k) > 0, "diag_covs[" + to_text(k) + "][" + to_text(i) + "]",
                diag_covs(i, k), "must be positive");
      g.covs_.push_back(BlockMatrix<Scalar>::diagonal(diag_covs.col(k)));
      g.low_ranks_.emplace_back();
    }
    return g;
  }

  // Class labels, one per component (gmm "labels"; empty without): labelled mixtures give
  // conditional data p(x | y) and the classifier p(y | x) for guidance (docs/NOTES.md sec. 14).
  void set_labels(const std::vector<int>& labels) {
    require(static_cast<int>(labels.size()) == components(), "labels", labels.size(),
            "needs one label per component (" + to_text(components()) + ")");
    for (size_t k = 0; k < labels.size(); ++k)
      require(labels[k] >= 0, "labels[" + to_text(k) + "]", labels[k], "must be >= 0");
    labels_ = labels;
  }
  const std::vector<int>& labels() const { return labels_; }
  bool has_label(int y) const {
    return std::find(labels_.begin(), labels_.end(), y) != labels_.end();
  }
  // The components labelled y (an InputError naming the label when there are none).
  std::vector<int> class_members(int y) const {
    require(has_label(y), "label", y, "labels no component of the target");
    std::vector<int> members;
    for (int k = 0; k < components(); ++k)
      if (labels_[static_cast<size_t>(k)] == y) members.push_back(k);
    return members;
  }
  // P(y): the weight of the components labelled y.
  Scalar class_prior(int y) const {
    Scalar total = 0;
    for (int k : class_members(y)) total += weights_(k);
    return total;
  }
  // p(x | y): the components labelled y, their weights renormalised.
  GaussianMixture conditional(int y) const {
    const std::vector<int> keep = class_members(y);
    const Scalar total = class_prior(y);
    Vec<Scalar> w(static_cast<Eigen::Index>(keep.size()));
    Mat<Scalar> m(dim(), w.size());
    GaussianMixture out(*this);
    out.covs_.clear();
    out.low_ranks_.clear();
    out.spectra_ = std::make_shared<Spectra>();
    for (size_t i = 0; i < keep.size(); ++i) {
      w(static_cast<Eigen::Index>(i)) = weights_(keep[i]) / total;
      m.col(static_cast<Eigen::Index>(i)) = means_.col(keep[i]);
      out.covs_.push_back(covs_[keep[i]]);
      out.low_ranks_.push_back(low_ranks_[keep[i]]);
    }
    out.weights_ = w;
    out.means_ = m;
    out.labels_.assign(keep.size(), y);
    return out;
  }

  const std::string& kind() const { return kind_; }
  int dim() const { return static_cast<int>(means_.rows()); }
  int components() const { return static_cast<int>(weights_.size()); }
  const Vec<Scalar>& weights() const { return weights_; }
  const Mat<Scalar>& means() const { return means_; }
  const BlockMatrix<Scalar>& cov(int k) const { return covs_[k]; }
  // S_k = D + U diag(l) U^T when a dense covariance has that structure (low_rank.hpp; found for
  // double data from d = 48 and rank <= d / 8), else null. The dense S_k is kept as given.
  const LowRankPlusDiagonal* low_rank(int k) const {
    return low_ranks_[static_cast<size_t>(k)].get();
  }

  // S_k = U diag(values) U^T for a dense covariance (null for a structured one: zero, shared or
  // diagonal), made on first use and shared by copies of the mixture. Under a scalar SDE the
  // marginal covariance alpha^2 S_k + sigma^2 I then has the same U at every t (Marginal).
  struct Spectrum {
    Vec<Scalar> values;
    Mat<Scalar> vectors;
  };
  const Spectrum* spectrum(int k) const {
    if (covs_[k].groups() != 1 || covs_[k].block_size() < 2) return nullptr;
    const std::lock_guard<std::mutex> lock(spectra_->mutex);
    spectra_->of.resize(covs_.size());
    auto& slot = spectra_->of[static_cast<size_t>(k)];
    if (!slot) {
      const Mat<Scalar>& cov = covs_[k].stored_block(0);
      if constexpr (std::is_same_v<Scalar, double>) {
        SymmetricEigen eig;
        try {
          eig = symmetric_eigen(cov);
        } catch (const NumericalError& e) {
          throw InputError("covs[" + to_text(k) + "]", "(dense)",
                           std::string("its eigendecomposition failed: ") + e.what());
        }
        slot = std::make_unique<Spectrum>(Spectrum{std::move(eig.values), std::move(eig.vectors)});
      } else {
        const Eigen::SelfAdjointEigenSolver<Mat<Scalar>> eig(cov);
        require(eig.info() == Eigen::Success, "covs[" + to_text(k) + "]", "(dense)",
                "its eigendecomposition did not converge");
        slot = std::make_unique<Spectrum>(Spectrum{eig.eigenvalues(), eig.eigenvectors()});
      }
    }
    return slot.get();
  }

  // n samples of the data (d x n).
  Mat<Scalar> sample(int n, Rng& rng) const {
    // Cholesky factors once per component (a Dirac's zero covariance has the zero factor).
    std::vector<BlockMatrix<Scalar>> factors;
    for (const auto& cov : covs_)
      factors.push_back(cov.max_abs() == Scalar(0) ? cov : cov.cholesky());
    Mat<Scalar> out(dim(), n);
    for (int j = 0; j < n; ++j) {
      const int k = pick_component(rng);
      out.col(j) = means_.col(k) + factors[k].apply(rng.normal_matrix<Scalar>(dim(), 1));
    }
    return out;
  }
  // Whether the data has a density: every covariance positive definite (not a Dirac).
  bool has_density() const { return kind_ != "dirac"; }
  // log p_0(x) for each column of x (d x n): log-sum-exp over k of log w_k + log N(x; mu_k, S_k).
  Vec<Scalar> log_density(const Mat<Scalar>& x) const {
    using std::exp;
    using std::log;
    require(has_density(), "target.type", kind_, "has no density (a point mass)");
    const Scalar log_2pi = log(2 * pi<Scalar>());
    Mat<Scalar> terms(components(), x.cols());
    for (int k = 0; k < components(); ++k) {
      const BlockMatrix<Scalar> chol = covs_[k].cholesky();
      const Mat<Scalar> white = chol.inverse().apply(x.colwise() - means_.col(k));
      const Scalar log_det = covs_[k].logdet_spd();
      for (Eigen::Index j = 0; j < x.cols(); ++j)
        terms(k, j) =
            log(weights_(k)) - (white.col(j).squaredNorm() + log_det + Scalar(dim()) * log_2pi) / 2;
    }
    Vec<Scalar> out(x.cols());
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const Scalar top = terms.col(j).maxCoeff();
      Scalar total = 0;
      for (int k = 0; k < components(); ++k) total += exp(terms(k, j) - top);
      out(j) = top + log(total);
    }
    return out;
  }

  int pick_component(Rng& rng) const {
    const double u = rng.uniform();
    double acc = 0;
    for (int k = 0; k < components(); ++k) {
      acc += to_double(weights_(k));
      if (u < acc) return k;
    }
    return components() - 1;
  }

 private:
  GaussianMixture(std::string kind, const Vec<Scalar>& weights, const Mat<Scalar>& means)
      : kind_(std::move(kind)), weights_(weights), means_(means) {
    using std::abs;
    require(means.rows() > 0, "means", "[]", "must not be empty");
    require(means.cols() == weights.size(), "means", to_text(means.cols()) + " columns",
            "needs one mean per weight (" + to_text(weights.size()) + ")");
    Scalar total = 0;
    for (Eigen::Index k = 0; k < weights.size(); ++k) {
      require(weights(k) > 0, "weights[" + to_text(k) + "]", weights(k), "must be positive");
      total += weights(k);
    }
    require(abs(total - 1) <= Scalar(1e-12), "weights", "sum " + to_text(total),
            "must sum to 1 (within 1e-12)");
  }

  // Checks a covariance given as a d x d matrix and adds it in the structure it has: a multiple
  // of the identity stays shared, a diagonal stays diagonal (and is checked entry by entry,
  // without an O(d^3) factorisation), a dense one found to be low rank plus a positive diagonal
  // is positive definite by that structure (no Cholesky factorisation either).
  void add_checked_cov(const Mat<Scalar>& cov, const std::string& field) {
    using std::abs;
    const int d = dim();
    require(cov.rows() == d && cov.cols() == d, field,
            to_text(cov.rows()) + "x" + to_text(cov.cols()),
            "must be " + to_text(d) + "x" + to_text(d) + " to match the mean");
    const Scalar asym = (cov - cov.transpose()).cwiseAbs().maxCoeff();
    require(asym <= Scalar(1e-12) * (1 + cov.cwiseAbs().maxCoeff()), field,
            "asymmetry " + to_text(asym), "must be symmetric");
    low_ranks_.emplace_back();
    const Vec<Scalar> diag = cov.diagonal();
    if ((cov - Mat<Scalar>(diag.asDiagonal())).cwiseAbs().maxCoeff() == Scalar(0)) {
      for (int i = 0; i < d; ++i)
        require(diag(i) > 0, field + "[" + to_text(i) + "][" + to_text(i) + "]", diag(i),
                "must be positive (the covariance must be positive definite)");
      if ((diag.array() == diag(0)).all())
        covs_.push_back(BlockMatrix<Scalar>::shared(d, Mat<Scalar>::Constant(1, 1, diag(0))));
      else
        covs_.push_back(BlockMatrix<Scalar>::diagonal(diag));
      return;
    }
    if constexpr (std::is_same_v<Scalar, double>) {
      if (auto found = detect_low_rank_plus_diagonal(cov)) {
        low_ranks_.back() = std::make_shared<const LowRankPlusDiagonal>(std::move(*found));
        covs_.push_back(BlockMatrix<Scalar>::dense(cov));
        return;
      }
    }
    Eigen::LLT<Mat<Scalar>> llt(cov);
    require(llt.info() == Eigen::Success, field, to_text(cov.row(0)) + " ...",
            "must be positive definite (Cholesky failed)");
    covs_.push_back(BlockMatrix<Scalar>::dense(cov));
  }

  std::string kind_;
  Vec<Scalar> weights_;
  Mat<Scalar> means_;
  std::vector<BlockMatrix<Scalar>> covs_;
  std::vector<std::shared_ptr<const LowRankPlusDiagonal>> low_ranks_;  // one per component
  std::vector<int> labels_;
  struct Spectra {
    std::mutex mutex;
    std::vector<std::unique_ptr<Spectrum>> of;
  };
  // Made on first use (spectrum()), behind a pointer so that the mixture stays copyable; a
  // mixture whose components change (class_mixture) gets its own.
  std::shared_ptr<Spectra> spectra_ = std::make_shared<Spectra>();
};

}  // namespace pflow
