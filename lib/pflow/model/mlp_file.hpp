// Model files, format 1 (README, "Model file format, version 1"): reading and checking them.
#pragma once

#include <cmath>
#include <memory>
#include <string>

#include "pflow/model/mlp.hpp"

namespace pflow {

// Reads a model file and checks it completely before it is used: format and version, the
// architecture, output, activation, time input and embedding names, that the layer shapes chain
// and start at D + embedding width, finite weights, and (when the file has /check) that pflow's
// forward reproduces torch's float64 outputs to 1e-12 relative. Every defect is an InputError on
// denoiser.path naming the file and the attribute or dataset.
MlpModel load_mlp_model(const std::string& path);

// The forward on the file's /check points: its largest deviation from torch's float64 outputs
// and the 50-digit forward's from the double one, each relative to the largest output (NaN and
// 0 points when the file has no /check).
struct ModelCheck {
  int points = 0;
  double torch_vs_double = std::nan("");
  double mp50_vs_double = std::nan("");
};
ModelCheck check_model(const MlpModel& model);

// One paragraph on the model: shapes, names, SDE, target, training.
std::string describe_model(const MlpModel& model);

// The SDE the model was trained on (its `sde` attribute), in double.
std::unique_ptr<LinearSde<double>> model_sde(const MlpModel& model);

}  // namespace pflow
