// The model a sampler queries: the score grad log p_t(x) of the noised data. The analytic
// denoiser of Gaussian-mixture data is exact (docs/NOTES.md sec. 3); learned denoisers implement
// the same interface.
#pragma once

#include <optional>
#include <string>

#include "pflow/target/marginal.hpp"

namespace pflow {

// Mean and covariance of the data (d and d x d), for data-aware samplers.
template <class Scalar>
struct DataMoments {
  Vec<Scalar> mean;
  Mat<Scalar> cov;
};

template <class Scalar>
class Denoiser {
 public:
  virtual ~Denoiser() = default;
  virtual std::string name() const = 0;
  // grad_x log p_t(x) for the columns of x (D x n).
  virtual Mat<Scalar> score(const Mat<Scalar>& x, const Scalar& t) const = 0;
  virtual std::optional<DataMoments<Scalar>> data_moments() const { return std::nullopt; }
};

template <class Scalar>
class AnalyticDenoiser : public Denoiser<Scalar> {
 public:
  AnalyticDenoiser(const LinearSde<Scalar>& sde, const GaussianMixture<Scalar>& data)
      : sde_(&sde), data_(&data) {}
  std::string name() const override { return "analytic"; }
  Mat<Scalar> score(const Mat<Scalar>& x, const Scalar& t) const override {
    return Marginal<Scalar>(*sde_, *data_, t).score(x);
  }
  // Mixture moments: mean = sum w_k mu_k, cov = sum w_k (S_k + mu_k mu_k^T) - mean mean^T.
  std::optional<DataMoments<Scalar>> data_moments() const override {
    const int d = data_->dim();
    DataMoments<Scalar> m{Vec<Scalar>::Zero(d), Mat<Scalar>::Zero(d, d)};
    for (int k = 0; k < data_->components(); ++k) {
      const Vec<Scalar> mu = data_->means().col(k);
      m.mean += data_->weights()(k) * mu;
      m.cov += data_->weights()(k) * (data_->cov(k).to_dense() + mu * mu.transpose());
    }
    m.cov -= m.mean * m.mean.transpose();
    return m;
  }

 private:
  const LinearSde<Scalar>* sde_;
  const GaussianMixture<Scalar>* data_;
};

}  // namespace pflow
