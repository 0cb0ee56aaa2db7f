// Building SDEs and targets from JSON (the config interface), with every field validated.
//
//   make_sde<double>({"type": "vp-linear", "beta_min": 0.1, "beta_max": 20}, 2, "sde")
//   make_target<double>({"type": "gmm", "weights": [...], "means": [[...]], "covs": [...]},
//   "target")
//
// Errors are InputError naming the JSON path ("sde.beta_min") and the offending value; unknown
// keys get the closest valid name suggested.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
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

// The config of a "gmm" target that make_target reads back: weights, means (K vectors of d) and
// full covariances (K matrices d x d).
inline nlohmann::json gmm_config(const std::vector<double>& weights,
                                 const std::vector<Vec<double>>& means,
                                 const std::vector<Mat<double>>& covs) {
  nlohmann::json m = nlohmann::json::array(), c = nlohmann::json::array();
  for (size_t k = 0; k < weights.size(); ++k) {
    m.push_back(std::vector<double>(means[k].data(), means[k].data() + means[k].size()));
    nlohmann::json rows = nlohmann::json::array();
    for (Eigen::Index i = 0; i < covs[k].rows(); ++i) {
      const Vec<double> row = covs[k].row(i).transpose();
      rows.push_back(std::vector<double>(row.data(), row.data() + row.size()));
    }
    c.push_back(rows);
  }
  return {{"type", "gmm"}, {"weights", weights}, {"means", m}, {"covs", c}};
}

// A Gaussian with a dense covariance of prescribed structure, for image-sized test beds
// (target {"type": "gaussian", "generated": {...}}); the mean has independent N(0, mean_std^2)
// entries. Deterministic in the seed (mt19937_64, one thread in LAPACK).
//  - "power-law": S = Q diag(l) Q^T with l_k = largest * k^-exponent (k = 1..dim) and Q
//    Haar-random (the QR factor of a standard normal matrix, signs fixed): S is dense and has no
//    structure to detect.
//  - "low-rank-plus-diagonal": S = D + Q diag(l) Q^T with l_k as above for k = 1..rank, Q dim x
//    rank Haar-random, and D_i log-uniform on [diagonal_min, diagonal_max] (c I when they
//    agree): a factor model, given to the run as a dense matrix for it to detect.
struct GeneratedGaussianSpec {
  std::string spectrum = "power-law";
  int dim = 0, rank = 0;  // rank = dim for the power law
  double largest = 0, exponent = 0, mean_std = 0, diagonal_min = 0, diagonal_max = 0;
  std::uint64_t seed = 0;
  Vec<double> eigenvalues() const;  // l_k, k = 1..rank, descending
};
GeneratedGaussianSpec generated_gaussian_spec(const nlohmann::json& generated,
                                              const std::string& path);
// Mean (dim) and covariance (dim x dim) of the spec.
std::pair<Vec<double>, Mat<double>> generate_gaussian(const GeneratedGaussianSpec& spec);
// A generated Gaussian's dimension from its validated spec, without generating it (0 for any
// other target block).
int generated_target_dim(const nlohmann::json& config, const std::string& path = "target");
// Whether a generated Gaussian is one the run will find to be c I plus low rank (spectrum
// "low-rank-plus-diagonal", equal diagonal bounds, rank <= dim / 8 from dim 48, well inside the
// detection's thresholds: low_rank.hpp), for the memory plan.
bool generated_target_low_rank(const nlohmann::json& config, const std::string& path = "target");

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
