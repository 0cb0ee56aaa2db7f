// Learned denoisers: the MLP of model format 1 (README, "Model file format, version 1";
// docs/NOTES.md sec. 10) evaluated in any number type, and its output turned into the score.
//
// The network maps [x; embedding(tau)] (D + E values per particle) through L affine layers with
// the activation after every layer but the last; tau = t or lambda = log(alpha / sigma). A
// class-conditional model (format 1's optional `classes` = C) takes C more inputs after the
// embedding: the one-hot vector of the class label, all zeros for "no label" (the unconditional
// model of classifier-free guidance, trained by label dropout). It is
// evaluated on a whole batch at once: one matrix product per layer over all particles. Weights
// are read as doubles, which every wider type holds exactly, so the 50-digit network is the same
// function as the double one, evaluated without round-off.
#pragma once

#include <boost/math/special_functions/erf.hpp>
#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pflow/sampler/denoiser.hpp"

namespace pflow {

enum class Activation { silu, gelu, tanh, softplus, relu };
enum class TimeInput { t, lambda };

const std::vector<std::string>& activation_names();  // silu gelu tanh softplus relu
const std::vector<std::string>& time_input_names();  // t lambda

// A model file's contents, in double. load_mlp_model (model/mlp_file.cpp) fills it and checks
// it: names, shapes, finiteness and the check outputs.
struct MlpModel {
  std::string path;
  Activation activation = Activation::silu;
  ModelOutput output = ModelOutput::eps;
  TimeInput time_input = TimeInput::t;
  std::vector<double> frequencies;   // Fourier embedding; empty: the raw embedding (tau itself)
  std::vector<Mat<double>> weights;  // [out, in] per layer
  std::vector<Vec<double>> biases;   // [out]
  nlohmann::json sde, target, training, time_embedding;
  int dim = 0;      // D: input and output width of the network's x part
  int classes = 0;  // C: one-hot label inputs of a class-conditional model (0: none)
  // Optional check data: points (D x n), their times (n), labels (n; -1 for none; empty for an
  // unconditional model) and torch's float64 outputs (D x n).
  Mat<double> check_x, check_output;
  Vec<double> check_t;
  std::vector<int> check_labels;

  int embedding_width() const {
    return frequencies.empty() ? 1 : 2 * static_cast<int>(frequencies.size());
  }
  int input_width() const { return dim + embedding_width() + classes; }
  int layers() const { return static_cast<int>(weights.size()); }
};

// erf in the working precision: the C library's in double, Boost's in wider types.
inline double erf_of(double x) {
  return std::erf(x);
}
template <class Scalar>
Scalar erf_of(const Scalar& x) {
  return boost::math::erf(x);
}

// The activation, elementwise, in the exact forms the format names ("gelu": the erf form;
// "softplus": log(1 + e^h) with no threshold).
template <class Scalar>
Scalar activate(Activation a, const Scalar& h) {
  using std::abs;
  using std::exp;
  using std::tanh;
  switch (a) {
    case Activation::silu:
      return h / (1 + exp(-h));
    case Activation::gelu:
      return h * (1 + erf_of(Scalar(h * boost::math::constants::one_div_root_two<Scalar>()))) / 2;
    case Activation::tanh:
      return tanh(h);
    case Activation::softplus:  // max(h, 0) + log(1 + e^-|h|): no overflow
      return (h > 0 ? h : Scalar(0)) + boost::math::log1p(Scalar(exp(-abs(h))));
    case Activation::relu:
      return h > 0 ? h : Scalar(0);
  }
  return h;
}

// The activation over a whole layer: SiLU, tanh and ReLU as Eigen array expressions (vectorised
// in double), the others element by element.
template <class Scalar>
void activate_all(Activation a, Mat<Scalar>& h) {
  switch (a) {
    case Activation::silu:
      h.array() /= (-h.array()).exp() + Scalar(1);
      return;
    case Activation::tanh:
      h.array() = h.array().tanh();
      return;
    case Activation::relu:
      h.array() = h.array().max(Scalar(0));
      return;
    default:
      h = h.unaryExpr([a](const Scalar& v) { return activate(a, v); });
  }
}

// The activation's derivative at h: silu' = sig(h) (1 + h (1 - sig(h))), gelu' = Phi(h) +
// h phi(h), tanh' = 1 - tanh^2, softplus' = sig(h), relu' = [h > 0] (0 at the kink).
template <class Scalar>
Scalar activation_slope(Activation a, const Scalar& h) {
  using std::exp;
  using std::tanh;
  const Scalar sigmoid = 1 / (1 + exp(-h));
  switch (a) {
    case Activation::silu:
      return sigmoid * (1 + h * (1 - sigmoid));
    case Activation::gelu: {
      const Scalar phi = exp(-h * h / 2) * boost::math::constants::one_div_root_two_pi<Scalar>();
      return (1 + erf_of(Scalar(h * boost::math::constants::one_div_root_two<Scalar>()))) / 2 +
             h * phi;
    }
    case Activation::tanh: {
      const Scalar th = tanh(h);
      return 1 - th * th;
    }
    case Activation::softplus:
      return sigmoid;
    case Activation::relu:
      return h > 0 ? Scalar(1) : Scalar(0);
  }
  return Scalar(1);
}

// The network in the working precision.
template <class Scalar>
class MlpNetwork {
 public:
  explicit MlpNetwork(const MlpModel& model) : model_(&model) {
    for (int l = 0; l < model.layers(); ++l) {
      weights_.push_back(model.weights[l].cast<Scalar>());
      biases_.push_back(model.biases[l].cast<Scalar>());
    }
    for (double f : model.frequencies) frequencies_.push_back(Scalar(f));
  }
  const MlpModel& model() const { return *model_; }

  // The network's output for the columns of x (D x n), column j at network time tau(j), all with
  // class `label` (-1: no label; only -1 for an unconditional model).
  Mat<Scalar> forward(const Mat<Scalar>& x, const Vec<Scalar>& tau, int label = -1) const {
    Mat<Scalar> h = input(x, tau, label);
    for (size_t l = 0; l < weights_.size(); ++l) {
      Mat<Scalar> next = weights_[l] * h;
      next.colwise() += biases_[l];
      if (l + 1 < weights_.size()) activate_all(model_->activation, next);
      h = std::move(next);
    }
    return h;
  }

  // The Jacobian-vector product J(x) v of the output with respect to x, for each column (its
  // own tangent v_j), by forward-mode differentiation through the layers (the time input has
  // no tangent): z' = W h', h' = act'(z) z'.
  Mat<Scalar> jvp(const Mat<Scalar>& x, const Vec<Scalar>& tau, const Mat<Scalar>& v,
                  int label = -1) const {
    Mat<Scalar> h = input(x, tau, label);
    Mat<Scalar> dh = Mat<Scalar>::Zero(h.rows(), h.cols());
    dh.topRows(x.rows()) = v;
    for (size_t l = 0; l < weights_.size(); ++l) {
      Mat<Scalar> next = weights_[l] * h;
      next.colwise() += biases_[l];
      Mat<Scalar> dnext = weights_[l] * dh;
      if (l + 1 < weights_.size()) {
        const Activation a = model_->activation;
        dnext.array() *=
            next.unaryExpr([a](const Scalar& z) { return activation_slope(a, z); }).array();
        activate_all(a, next);
      }
      h = std::move(next);
      dh = std::move(dnext);
    }
    return dh;
  }

 private:
  // The first layer's input [x; embedding(tau); one-hot(label)] per column.
  Mat<Scalar> input(const Mat<Scalar>& x, const Vec<Scalar>& tau, int label) const {
    const Eigen::Index n = x.cols(), d = x.rows();
    const int e = model_->embedding_width(), c = model_->classes;
    require(label >= -1 && label < c, "denoiser.label", label,
            "is not a class of model " + model_->path + " (it has " + std::to_string(c) + ")");
    Mat<Scalar> h = Mat<Scalar>::Zero(d + e + c, n);
    h.topRows(d) = x;
    for (Eigen::Index j = 0; j < n; ++j) embed(tau(j), h.col(j).segment(d, e));
    if (label >= 0) h.row(d + e + label).setOnes();
    return h;
  }

  // Raw: tau itself; Fourier: sin(f_1 tau) .. sin(f_m tau), cos(f_1 tau) .. cos(f_m tau).
  template <class Column>
  void embed(const Scalar& tau, Column&& out) const {
    using std::cos;
    using std::sin;
    if (frequencies_.empty()) {
      out(0) = tau;
      return;
    }
    const Eigen::Index m = static_cast<Eigen::Index>(frequencies_.size());
    for (Eigen::Index k = 0; k < m; ++k) {
      out(k) = sin(frequencies_[k] * tau);
      out(m + k) = cos(frequencies_[k] * tau);
    }
  }

  const MlpModel* model_;
  std::vector<Mat<Scalar>> weights_;
  std::vector<Vec<Scalar>> biases_;
  std::vector<Scalar> frequencies_;
};

// The denoiser of a learned MLP under an SDE: its output turned into the score. A score output
// needs no conversion and serves every linear SDE; the others need a scalar SDE. A
// class-conditional model serves the class `label` (-1: the unconditional model, the one-hot
// input all zeros); the *_for members take the label per call (classifier-free guidance needs
// two).
template <class Scalar>
class MlpDenoiser : public Denoiser<Scalar> {
 public:
  MlpDenoiser(const LinearSde<Scalar>& sde, const MlpModel& model, int label = -1)
      : network_(model),
        sde_(&sde),
        scalar_(dynamic_cast<const ScalarSde<Scalar>*>(&sde)),
        label_(label) {
    require(model.dim == sde.state_dim(), "denoiser.path", model.path,
            "the network takes " + to_text(model.dim) + " coordinates, the SDE's state has " +
                to_text(sde.state_dim()));
    const bool needs_scalar =
        model.output != ModelOutput::score || model.time_input == TimeInput::lambda;
    require(!needs_scalar || scalar_ != nullptr, "denoiser.path", model.path,
            "its output or time input needs a scalar SDE (alpha, sigma), not " + sde.name() +
                "; train a model with output \"score\" and time input \"t\"");
    check_label(label);
  }
  std::string name() const override { return "mlp"; }
  ModelOutput output() const override { return network_.model().output; }
  Mat<Scalar> predict(const Mat<Scalar>& x, const Scalar& t) const override {
    return output(x, t, label_);
  }
  // With a label it models the class's conditional data, not the data: no error split.
  bool approximates_data() const override { return label_ < 0; }
  const MlpNetwork<Scalar>& network() const { return network_; }

  // A label the model can take: -1, or 0 to C - 1 for a class-conditional model.
  void check_label(int label) const {
    const int c = network_.model().classes;
    require(
        label >= -1 && label < c, "denoiser.label", label,
        c == 0 ? "model " + network_.model().path +
                     " is not class-conditional (its file has no 'classes' attribute)"
               : "model " + network_.model().path + " knows classes 0 to " + std::to_string(c - 1));
  }

  // The network's time input at t.
  Scalar network_time(const Scalar& t) const {
    return network_.model().time_input == TimeInput::lambda ? scalar_->lambda(t) : t;
  }
  // The raw network output at time t (D x n) for class `label`.
  Mat<Scalar> output(const Mat<Scalar>& x, const Scalar& t, int label) const {
    return network_.forward(x, Vec<Scalar>::Constant(x.cols(), network_time(t)), label);
  }
  Mat<Scalar> output(const Mat<Scalar>& x, const Scalar& t) const { return output(x, t, label_); }

  Mat<Scalar> score_for(const Mat<Scalar>& x, const Scalar& t, int label) const {
    return convert_output(network_.model().output, ModelOutput::score, output(x, t, label), x,
                          scalar_, t);
  }
  Mat<Scalar> score(const Mat<Scalar>& x, const Scalar& t) const override {
    return score_for(x, t, label_);
  }

  // tr(W grad s) exactly: the network's Jacobian column by column (D forward-mode passes,
  // J e_k for every particle at once), then the output-to-score map, which is affine in the
  // output: grad s = a J + b I (output_slope).
  Vec<Scalar> score_divergence_for(const Mat<Scalar>& x, const Scalar& t,
                                   const BlockMatrix<Scalar>& w, int label) const {
    const Mat<Scalar> ambient =
        sde_->from_spectral(Mat<Scalar>(sde_->from_spectral(w.to_dense()).transpose()));
    const Eigen::Index d = x.rows(), n = x.cols();
    const Vec<Scalar> tau = Vec<Scalar>::Constant(n, network_time(t));
    Vec<Scalar> trace_wj = Vec<Scalar>::Zero(n);
    for (Eigen::Index k = 0; k < d; ++k) {
      Mat<Scalar> ek = Mat<Scalar>::Zero(d, n);
      ek.row(k).setOnes();
      const Mat<Scalar> column = network_.jvp(x, tau, ek, label);  // J e_k, D x n
      trace_wj += (ambient.row(k) * column).transpose();           // sum_i W_ki J_ik
    }
    const auto [a, b] = output_slope(t);
    return a * trace_wj + Vec<Scalar>::Constant(n, b * ambient.trace());
  }
  Vec<Scalar> score_divergence(const Mat<Scalar>& x, const Scalar& t,
                               const BlockMatrix<Scalar>& w) const override {
    return score_divergence_for(x, t, w, label_);
  }

  // grad s v = a J v + b v (the same affine map).
  Mat<Scalar> score_jvp_for(const Mat<Scalar>& x, const Scalar& t, const Mat<Scalar>& v,
                            int label) const {
    const auto [a, b] = output_slope(t);
    return a * network_.jvp(x, Vec<Scalar>::Constant(x.cols(), network_time(t)), v, label) + b * v;
  }
  Mat<Scalar> score_jvp(const Mat<Scalar>& x, const Scalar& t,
                        const Mat<Scalar>& v) const override {
    return score_jvp_for(x, t, v, label_);
  }

 private:
  // grad s = a J + b I, the output-to-score map's slope in the output and in x (score_slope).
  std::pair<Scalar, Scalar> output_slope(const Scalar& t) const {
    return score_slope(network_.model().output, scalar_, t);
  }

  MlpNetwork<Scalar> network_;
  const LinearSde<Scalar>* sde_;
  const ScalarSde<Scalar>* scalar_;
  int label_;
};

// Classifier-free guidance with a class-conditional network (docs/NOTES.md sec. 14):
// s = (1 + w) s(x | y) - w s(x | no label), the same combination in eps (the output-to-score
// map is affine with the same slope for both). Its divergence and Jacobian-vector products are
// that combination of the network's. w = 0 is the conditional model itself.
template <class Scalar>
class CfgMlpDenoiser : public Denoiser<Scalar> {
 public:
  CfgMlpDenoiser(const LinearSde<Scalar>& sde, const MlpModel& model, int label,
                 const Scalar& scale)
      : model_(sde, model), label_(label), scale_(scale) {
    require(label >= 0, "denoiser.label", label, "guidance needs a class label (>= 0)");
    model_.check_label(label);
  }
  std::string name() const override { return "cfg"; }
  bool approximates_data() const override { return false; }
  // The combination in the network's own output (affine in the score with one slope for both
  // labels, so it is the same guided score).
  ModelOutput output() const override { return model_.output(); }
  Mat<Scalar> predict(const Mat<Scalar>& x, const Scalar& t) const override {
    if (scale_ == 0) return model_.output(x, t, label_);
    return (1 + scale_) * model_.output(x, t, label_) - scale_ * model_.output(x, t, -1);
  }
  Mat<Scalar> score(const Mat<Scalar>& x, const Scalar& t) const override {
    if (scale_ == 0) return model_.score_for(x, t, label_);
    return (1 + scale_) * model_.score_for(x, t, label_) - scale_ * model_.score_for(x, t, -1);
  }
  Vec<Scalar> score_divergence(const Mat<Scalar>& x, const Scalar& t,
                               const BlockMatrix<Scalar>& w) const override {
    return (1 + scale_) * model_.score_divergence_for(x, t, w, label_) -
           scale_ * model_.score_divergence_for(x, t, w, -1);
  }
  Mat<Scalar> score_jvp(const Mat<Scalar>& x, const Scalar& t,
                        const Mat<Scalar>& v) const override {
    return (1 + scale_) * model_.score_jvp_for(x, t, v, label_) -
           scale_ * model_.score_jvp_for(x, t, v, -1);
  }

 private:
  MlpDenoiser<Scalar> model_;
  int label_;
  Scalar scale_;
};

}  // namespace pflow
