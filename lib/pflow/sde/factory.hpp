// Building SDEs and targets from JSON (the config interface), with every field validated.
//
//   make_sde<double>({"type": "vp-linear", "beta_min": 0.1, "beta_max": 20}, 2, "sde")
//   make_target<double>({"type": "gmm", "weights": [...], "means": [[...]], "covs": [...]},
//   "target")
//
// Errors are InputError naming the JSON path ("sde.beta_min") and the offending value; unknown
// keys get the closest valid name suggested.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pflow/core/json_fields.hpp"

#include "pflow/sde/sde.hpp"
#include "pflow/target/gaussian_mixture.hpp"

namespace pflow {

struct SdeInfo {
  std::string name;
  std::string parameters;  // with defaults
  std::string reference;
};
// The SDE types with their parameters and defaults.
const std::vector<SdeInfo>& sde_catalogue();

// An SDE on data of dimension data_dim (the blurring SDE takes its dimension from "shape" and
// checks it against data_dim; pass data_dim <= 0 to accept the shape's).
template <class Scalar>
std::unique_ptr<LinearSde<Scalar>> make_sde(const nlohmann::json& config, int data_dim,
                                            const std::string& path = "sde");

template <class Scalar>
GaussianMixture<Scalar> make_target(const nlohmann::json& config,
                                    const std::string& path = "target");

extern template std::unique_ptr<LinearSde<double>> make_sde<double>(const nlohmann::json&, int,
                                                                    const std::string&);
extern template std::unique_ptr<LinearSde<mp50>> make_sde<mp50>(const nlohmann::json&, int,
                                                                const std::string&);
extern template std::unique_ptr<LinearSde<f128>> make_sde<f128>(const nlohmann::json&, int,
                                                                const std::string&);
extern template GaussianMixture<f128> make_target<f128>(const nlohmann::json&, const std::string&);
extern template GaussianMixture<double> make_target<double>(const nlohmann::json&,
                                                            const std::string&);
extern template GaussianMixture<mp50> make_target<mp50>(const nlohmann::json&, const std::string&);

}  // namespace pflow
