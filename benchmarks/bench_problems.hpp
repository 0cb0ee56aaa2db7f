// The problems the speed benchmarks share (bench_speed.cpp, bench_sampler.cpp): the headline's
// data, random mixtures with full covariances, standard normal states; fixed seeds throughout.
#pragma once

#include <nlohmann/json.hpp>

#include "pflow/core/scalar.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/target/random.hpp"

namespace pflow::bench {

using json = nlohmann::json;

inline const json vp_linear = {{"type", "vp-linear"}, {"beta_min", 0.1}, {"beta_max", 20.0}};

// The headline's data (experiments/vp_gmm2d_headline.json).
inline const json headline_mixture = {
    {"type", "gmm"},
    {"weights", {0.3, 0.45, 0.25}},
    {"means", {{-1.0, 0.3}, {0.8, 0.8}, {0.4, -1.0}}},
    {"covs", {{{0.5, 0.2}, {0.2, 0.35}}, {{0.6, -0.2}, {-0.2, 0.3}}, {{0.25, 0.0}, {0.0, 0.8}}}}};

// rows x cols standard normal numbers (seeded).
inline Mat<double> normal_states(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed) {
  Rng rng(seed);
  return rng.normal_matrix<double>(rows, cols);
}

// A K-component mixture in d dimensions with full covariances: S_k = A A^T / d + I / 10 for a
// standard normal A, means of standard deviation 2, equal weights.
inline json random_mixture(int d, int k) {
  std::vector<Vec<double>> means;
  std::vector<Mat<double>> covs;
  for (int c = 0; c < k; ++c) {
    const Mat<double> a = normal_states(d, d, 100 + static_cast<std::uint64_t>(c));
    covs.push_back(a * a.transpose() / d + Mat<double>::Identity(d, d) / 10);
    means.push_back(2 * normal_states(d, 1, 200 + static_cast<std::uint64_t>(c)));
  }
  return gmm_config(std::vector<double>(static_cast<size_t>(k), 1.0 / k), means, covs);
}

}  // namespace pflow::bench
