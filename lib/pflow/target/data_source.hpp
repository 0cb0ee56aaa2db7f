// The data of a run: a Gaussian mixture (dirac, gaussian, gmm: density and analytic score) or a
// sample-only data set (target type "dataset", target/dataset.hpp). Both can be sampled, at
// t = 0 and under an SDE at any t > 0; only the mixture has a density and a score.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "pflow/sde/factory.hpp"
#include "pflow/target/dataset.hpp"
#include "pflow/target/marginal.hpp"

namespace pflow {

template <class Scalar>
class DataSource {
 public:
  // From a config's target block; errors name the field under `path`.
  static DataSource from_config(const nlohmann::json& target, const std::string& path) {
    DataSource d;
    if (is_dataset_target(target))
      d.dataset_ = Dataset::parse(target, path);
    else
      d.mixture_ = make_target<Scalar>(target, path);
    return d;
  }

  // The data dimension of a target block, validated; a generated Gaussian's comes from its spec
  // (generating a d = 3072 covariance takes seconds).
  static int dim_of_config(const nlohmann::json& target, const std::string& path) {
    if (const int d = generated_target_dim(target, path)) return d;
    return from_config(target, path).dim();
  }

  // The mixture, or null for a sample-only data set.
  const GaussianMixture<Scalar>* mixture() const { return mixture_ ? &*mixture_ : nullptr; }
  int dim() const { return mixture_ ? mixture_->dim() : Dataset::dim; }
  std::string kind() const { return mixture_ ? mixture_->kind() : dataset_->name; }

  // n data points (d x n).
  Mat<Scalar> sample(int n, Rng& rng) const {
    return mixture_ ? mixture_->sample(n, rng) : dataset_->template sample<Scalar>(n, rng);
  }

  // n samples of p_t under `sde` (D x n): a mixture's marginal directly (Marginal::sample); a
  // data set's points pushed through the forward kernel, x_t = Psi(t,0) lift(x_0) + K z with
  // K K^T = Sigma(t), the kernel's covariance (for CLD it holds the initial velocities' through
  // the SDE's initial covariance).
  Mat<Scalar> sample_marginal(const LinearSde<Scalar>& sde, const Scalar& t, int n,
                              Rng& rng) const {
    if (mixture_) return Marginal<Scalar>(sde, *mixture_, t).sample(n, rng);
    const Mat<Scalar> x0 = sample(n, rng);
    const BlockMatrix<Scalar> psi = sde.transition(t, Scalar(0));
    const BlockMatrix<Scalar> cov =
        sde.marginal_covariance(BlockMatrix<Scalar>::zero(dim(), 1), psi, sde.covariance(t));
    BlockMatrix<Scalar> factor;
    try {
      factor = cov.cholesky();
    } catch (const NumericalError&) {
      throw InputError("t", to_text(t),
                       "the covariance of " + sde.name() +
                           "'s kernel is singular here: p_t of a "
                           "data set cannot be sampled");
    }
    const Mat<Scalar> z =
        psi.apply(sde.lift_data(x0)) + factor.apply(rng.normal_matrix<Scalar>(sde.state_dim(), n));
    return sde.from_spectral(z);
  }

 private:
  std::optional<GaussianMixture<Scalar>> mixture_;
  std::optional<Dataset> dataset_;
};

}  // namespace pflow
