// The denoiser of a run, from its config block (README, "Learned denoisers"): "analytic" (the
// exact score of the mixture), "perturbed" (that score plus a known smooth error), "mlp" (a
// learned network from a model file, model/mlp.hpp, optionally of one class) or "guided" (the
// exact guided score, or with a model file classifier-free guidance of the network).
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>

#include <nlohmann/json.hpp>

#include "pflow/model/mlp.hpp"

namespace pflow {

// `data` is the run's mixture (null for a sample-only data set, which only a learned model can
// serve); `mlp` the model file's contents when spec's type is "mlp" (read once, in double).
template <class Scalar>
std::unique_ptr<Denoiser<Scalar>> make_denoiser(const nlohmann::json& spec,
                                                const LinearSde<Scalar>& sde,
                                                const GaussianMixture<Scalar>* data,
                                                const MlpModel* mlp) {
  const std::string type = spec.value("type", std::string("analytic"));
  if (spec.contains("path")) {
    require(mlp != nullptr, "denoiser.path", spec.value("path", std::string()),
            "the model file was not read");
    if (type == "guided")
      return std::make_unique<CfgMlpDenoiser<Scalar>>(
          sde, *mlp, spec.at("label").get<int>(),
          from_double<Scalar>(spec.at("scale").get<double>()));
    return std::make_unique<MlpDenoiser<Scalar>>(sde, *mlp, spec.value("label", -1));
  }
  require(data != nullptr, "denoiser.type", type,
          "needs the data's analytic score, and the target is a sample-only data set");
  if (type == "guided")
    return std::make_unique<GuidedDenoiser<Scalar>>(
        sde, *data, spec.at("label").get<int>(),
        from_double<Scalar>(spec.at("scale").get<double>()), spec.at("guidance") == "classifier");
  if (type == "perturbed")
    return std::make_unique<PerturbedDenoiser<Scalar>>(
        sde, *data, from_double<Scalar>(spec.at("delta").get<double>()),
        from_double<Scalar>(spec.at("omega").get<double>()));
  const auto& names = model_output_names();
  const std::string output = spec.value("output", std::string("score"));
  const auto kind =
      static_cast<ModelOutput>(std::find(names.begin(), names.end(), output) - names.begin());
  return std::make_unique<AnalyticDenoiser<Scalar>>(sde, *data, kind);
}

// Whether two SDEs have the same forward kernel: Psi(t, 0) and Sigma(t) agree to 1e-12
// (relative to their largest entry, in each SDE's own basis) at five times over [t_lo, t_hi].
inline bool same_kernel(const LinearSde<double>& a, const LinearSde<double>& b, double t_lo,
                        double t_hi) {
  if (a.state_dim() != b.state_dim()) return false;
  auto close = [](const Mat<double>& x, const Mat<double>& y) {
    if (x.rows() != y.rows() || x.cols() != y.cols()) return false;
    const double scale = std::max({x.cwiseAbs().maxCoeff(), y.cwiseAbs().maxCoeff(), 1e-300});
    return (x - y).cwiseAbs().maxCoeff() <= 1e-12 * scale;
  };
  for (int k = 0; k <= 4; ++k) {
    const double t = t_lo + (t_hi - t_lo) * k / 4.0;
    if (!close(a.transition(t, 0).to_dense(), b.transition(t, 0).to_dense()) ||
        !close(a.covariance(t).to_dense(), b.covariance(t).to_dense()))
      return false;
  }
  return true;
}

}  // namespace pflow
