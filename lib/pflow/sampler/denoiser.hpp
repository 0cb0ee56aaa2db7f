// The model a sampler queries: the score grad log p_t(x) of the noised data. The analytic
// denoiser of Gaussian-mixture data is exact (docs/NOTES.md sec. 3); the perturbed one adds a
// known smooth error to it; learned denoisers (model/mlp.hpp) implement the same interface.
#pragma once

#include <optional>
#include <string>

#include "pflow/core/simd.hpp"
#include "pflow/sde/scalar_sdes.hpp"
#include "pflow/target/marginal.hpp"

namespace pflow {

// What a model outputs (docs/NOTES.md sec. 17). With x = alpha x0 + sigma eps on a scalar SDE:
// eps; x0; v = alpha eps - sigma x0 (Salimans & Ho 2022); the score; the velocity u = d alpha/dt x0
// + d sigma/dt eps of flow matching, which is the probability-flow ODE's dx/dt = f x - g^2/2 score.
enum class ModelOutput { eps, x0, v, score, velocity };
inline const std::vector<std::string>& model_output_names() {
  static const std::vector<std::string> names = {"eps", "x0", "v", "score", "velocity"};
  return names;
}

// Every output is affine in the score at fixed (x, t): score = a out + b x. The pair (a, b):
//   eps:      (-1 / sigma, 0)
//   x0:       (alpha / sigma^2, -1 / sigma^2)
//   v:        (-alpha, -sigma) / (sigma (alpha^2 + sigma^2))
//   velocity: (-2 / g^2, 2 f / g^2)
// A score output is (1, 0) on every linear SDE; the others need a scalar SDE (sde non-null).
template <class Scalar>
std::pair<Scalar, Scalar> score_slope(ModelOutput kind, const ScalarSde<Scalar>* sde,
                                      const Scalar& t) {
  if (kind == ModelOutput::score) return {Scalar(1), Scalar(0)};
  require(sde != nullptr, "denoiser.output", model_output_names()[static_cast<size_t>(kind)],
          "needs a scalar SDE (alpha, sigma); only \"score\" serves matrix SDEs");
  const Scalar alpha = sde->alpha(t), sigma = sde->sigma(t);
  switch (kind) {
    case ModelOutput::eps:
      return {-1 / sigma, Scalar(0)};
    case ModelOutput::x0:
      return {alpha / (sigma * sigma), -1 / (sigma * sigma)};
    case ModelOutput::v: {
      const Scalar denom = sigma * (alpha * alpha + sigma * sigma);
      return {-alpha / denom, -sigma / denom};
    }
    case ModelOutput::velocity: {
      const Scalar g2 = sde->g2(t);
      return {-2 / g2, 2 * sde->f(t) / g2};
    }
    case ModelOutput::score:
      break;
  }
  return {Scalar(1), Scalar(0)};
}

// Output `from` (values `out` at the columns of x) in the parameterisation `to`, through the
// score's affine maps: score = a_from out + b_from x, then (score - b_to x) / a_to.
template <class Scalar>
Mat<Scalar> convert_output(ModelOutput from, ModelOutput to, const Mat<Scalar>& out,
                           const Mat<Scalar>& x, const ScalarSde<Scalar>* sde, const Scalar& t) {
  if (from == to) return out;
  const auto [a_from, b_from] = score_slope(from, sde, t);
  if constexpr (std::is_same_v<Scalar, double>) {
    if (to != ModelOutput::score && kernels::have_simd()) {  // both passes in one, same bits
      const auto [a_to, b_to] = score_slope(to, sde, t);
      Mat<double> result(out.rows(), out.cols());
      kernels::convert_affine(out.data(), x.data(), out.size(), a_from, b_from, b_to, a_to,
                              result.data());
      return result;
    }
  }
  const Mat<Scalar> score = a_from * out + b_from * x;
  if (to == ModelOutput::score) return score;
  const auto [a_to, b_to] = score_slope(to, sde, t);
  return (score - b_to * x) / a_to;
}

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
  // What the model outputs, and that output itself (D x n): solvers take eps, x0 or the velocity
  // from it directly (SolveContext converts). Models that output the score need neither.
  virtual ModelOutput output() const { return ModelOutput::score; }
  virtual Mat<Scalar> predict(const Mat<Scalar>& x, const Scalar& t) const { return score(x, t); }
  virtual std::optional<DataMoments<Scalar>> data_moments() const { return std::nullopt; }
  // Whether this is the data's exact score (its flow is the data's flow): runs then need no
  // separate model flow and no error split.
  virtual bool is_exact() const { return false; }
  // Whether the model approximates the data's score, so that its flow is compared with the
  // data's analytic flow (the error split of learned and perturbed models). Guided scores aim
  // elsewhere on purpose.
  virtual bool approximates_data() const { return true; }
  // tr(W grad_x score(x, t)) for each column of x, W given in the SDE's spectral basis: the
  // divergence term of the probability-flow ODE (docs/NOTES.md sec. 12). Models without an
  // exact form throw.
  virtual Vec<Scalar> score_divergence(const Mat<Scalar>&, const Scalar&,
                                       const BlockMatrix<Scalar>&) const {
    throw InputError("denoiser", name(), "has no exact score divergence");
  }
  // grad_x score(x, t) v for each column with its own tangent v (D x n, ambient basis): what
  // Hutchinson's estimator of the divergence needs.
  virtual Mat<Scalar> score_jvp(const Mat<Scalar>&, const Scalar&, const Mat<Scalar>&) const {
    throw InputError("denoiser", name(), "has no Jacobian-vector product");
  }
};

// The exact score of mixture data. It may declare another output (denoiser "output"): it then
// predicts that output of the exact model, as a network trained on it would, and its score is
// converted back from it.
template <class Scalar>
class AnalyticDenoiser : public Denoiser<Scalar> {
 public:
  AnalyticDenoiser(const LinearSde<Scalar>& sde, const GaussianMixture<Scalar>& data,
                   ModelOutput output = ModelOutput::score)
      : sde_(&sde),
        scalar_(dynamic_cast<const ScalarSde<Scalar>*>(&sde)),
        data_(&data),
        output_(output) {
    require(output == ModelOutput::score || scalar_ != nullptr, "denoiser.output",
            model_output_names()[static_cast<size_t>(output)],
            "needs a scalar SDE (alpha, sigma), not " + sde.name() + "; use \"score\"");
  }
  std::string name() const override { return "analytic"; }
  bool is_exact() const override { return true; }
  ModelOutput output() const override { return output_; }
  Mat<Scalar> predict(const Mat<Scalar>& x, const Scalar& t) const override {
    if (output_ == ModelOutput::score) return this->score(x, t);
    return convert_output(ModelOutput::score, output_, exact_score(x, t), x, scalar_, t);
  }
  Vec<Scalar> score_divergence(const Mat<Scalar>& x, const Scalar& t,
                               const BlockMatrix<Scalar>& w) const override {
    return Marginal<Scalar>(*sde_, *data_, t).score_divergence(x, w);
  }
  Mat<Scalar> score_jvp(const Mat<Scalar>& x, const Scalar& t,
                        const Mat<Scalar>& v) const override {
    return Marginal<Scalar>(*sde_, *data_, t).score_jvp(x, v);
  }
  Mat<Scalar> score(const Mat<Scalar>& x, const Scalar& t) const override {
    if (output_ == ModelOutput::score) return exact_score(x, t);
    return convert_output(output_, ModelOutput::score, predict(x, t), x, scalar_, t);
  }
  Mat<Scalar> exact_score(const Mat<Scalar>& x, const Scalar& t) const {
    return Marginal<Scalar>(*sde_, *data_, t).score(x);
  }
  const LinearSde<Scalar>& sde() const { return *sde_; }
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
  const ScalarSde<Scalar>* scalar_;
  const GaussianMixture<Scalar>* data_;
  ModelOutput output_;
};

// The analytic score plus a smooth deterministic error of size delta (docs/NOTES.md sec. 10):
// e_i(x, t) = delta sin(omega (x_1 + ... + x_D) + t + i) in coordinate i = 0 .. D-1, so that the
// error floor of a sampler can be studied with a known model error and no training noise.
template <class Scalar>
class PerturbedDenoiser : public AnalyticDenoiser<Scalar> {
 public:
  PerturbedDenoiser(const LinearSde<Scalar>& sde, const GaussianMixture<Scalar>& data,
                    const Scalar& delta, const Scalar& omega)
      : AnalyticDenoiser<Scalar>(sde, data), delta_(delta), omega_(omega) {}
  std::string name() const override { return "perturbed"; }
  bool is_exact() const override { return false; }
  Mat<Scalar> score(const Mat<Scalar>& x, const Scalar& t) const override {
    using std::sin;
    Mat<Scalar> s = AnalyticDenoiser<Scalar>::score(x, t);
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const Scalar phase = omega_ * x.col(j).sum() + t;
      for (Eigen::Index i = 0; i < x.rows(); ++i) s(i, j) += delta_ * sin(phase + Scalar(i));
    }
    return s;
  }
  // The perturbation's Jacobian is c 1^T with c_i = delta omega cos(phase + i), so it adds
  // tr(W c 1^T) = 1^T W c, W in the ambient basis.
  Vec<Scalar> score_divergence(const Mat<Scalar>& x, const Scalar& t,
                               const BlockMatrix<Scalar>& w) const override {
    using std::cos;
    Vec<Scalar> out = AnalyticDenoiser<Scalar>::score_divergence(x, t, w);
    const LinearSde<Scalar>& sde = this->sde();
    const Mat<Scalar> ambient =
        sde.from_spectral(Mat<Scalar>(sde.from_spectral(w.to_dense()).transpose()));
    const Vec<Scalar> column_sums = ambient.colwise().sum().transpose();  // (1^T W)_i
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const Scalar phase = omega_ * x.col(j).sum() + t;
      for (Eigen::Index i = 0; i < x.rows(); ++i)
        out(j) += column_sums(i) * delta_ * omega_ * cos(phase + Scalar(i));
    }
    return out;
  }
  // Plus c (1^T v), c_i = delta omega cos(phase + i).
  Mat<Scalar> score_jvp(const Mat<Scalar>& x, const Scalar& t,
                        const Mat<Scalar>& v) const override {
    using std::cos;
    Mat<Scalar> out = AnalyticDenoiser<Scalar>::score_jvp(x, t, v);
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const Scalar phase = omega_ * x.col(j).sum() + t, total = v.col(j).sum();
      for (Eigen::Index i = 0; i < x.rows(); ++i)
        out(i, j) += delta_ * omega_ * cos(phase + Scalar(i)) * total;
    }
    return out;
  }

 private:
  Scalar delta_, omega_;
};

// Guidance toward class y of a labelled mixture (docs/NOTES.md sec. 14), over its exact scores:
//   classifier: s = grad log p_t(x) + w grad log p_t(y | x)           (Dhariwal & Nichol 2021)
//   cfg:        s = (1 + w) grad log p_t(x | y) - w grad log p_t(x)   (Ho & Salimans 2022)
// CFG is published in eps; eps is linear in the score, so the combination is the same. Since
// grad log p_t(y | x) = grad log p_t(x | y) - grad log p_t(x), classifier guidance at scale w is
// CFG at scale w - 1; the classifier form computes its gradient from the classifier itself.
template <class Scalar>
class GuidedDenoiser : public Denoiser<Scalar> {
 public:
  GuidedDenoiser(const LinearSde<Scalar>& sde, const GaussianMixture<Scalar>& data, int label,
                 const Scalar& scale, bool classifier)
      : sde_(&sde),
        data_(&data),
        conditional_(data.conditional(label)),
        label_(label),
        scale_(scale),
        classifier_(classifier) {}
  std::string name() const override { return classifier_ ? "classifier-guided" : "cfg"; }
  bool approximates_data() const override { return false; }
  Mat<Scalar> score(const Mat<Scalar>& x, const Scalar& t) const override {
    const Marginal<Scalar> full(*sde_, *data_, t);
    if (classifier_) return full.score(x) + scale_ * full.class_score(x, label_);
    const Marginal<Scalar> cond(*sde_, conditional_, t);
    return (1 + scale_) * cond.score(x) - scale_ * full.score(x);
  }
  // The divergence and Jacobian-vector products: the same combination of the conditional's and
  // the mixture's (a s_cond + b s_full).
  Vec<Scalar> score_divergence(const Mat<Scalar>& x, const Scalar& t,
                               const BlockMatrix<Scalar>& w) const override {
    const auto [a, b] = weights();
    return a * Marginal<Scalar>(*sde_, conditional_, t).score_divergence(x, w) +
           b * Marginal<Scalar>(*sde_, *data_, t).score_divergence(x, w);
  }
  Mat<Scalar> score_jvp(const Mat<Scalar>& x, const Scalar& t,
                        const Mat<Scalar>& v) const override {
    const auto [a, b] = weights();
    return a * Marginal<Scalar>(*sde_, conditional_, t).score_jvp(x, v) +
           b * Marginal<Scalar>(*sde_, *data_, t).score_jvp(x, v);
  }
  const GaussianMixture<Scalar>& conditional() const { return conditional_; }

 private:
  // s = a grad log p_t(x | y) + b grad log p_t(x).
  std::pair<Scalar, Scalar> weights() const {
    if (classifier_) return {scale_, 1 - scale_};
    return {1 + scale_, -scale_};
  }
  const LinearSde<Scalar>* sde_;
  const GaussianMixture<Scalar>* data_;
  GaussianMixture<Scalar> conditional_;
  int label_;
  Scalar scale_;
  bool classifier_;
};

}  // namespace pflow
