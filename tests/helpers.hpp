// Shared helpers for the Catch2 suites.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pflow/core/scalar.hpp"
#include "pflow/core/simd.hpp"
#include "pflow/sampler/time_grid.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/sde/scalar_sdes.hpp"

namespace pflow::testing {

// max |a - b| as a double.
template <class A, class B>
double max_diff(const A& a, const B& b) {
  return to_double((a - b).cwiseAbs().maxCoeff());
}

// For the tests that compare the AVX-512 kernels (core/simd.hpp) with Eigen's code on one
// machine: whether this CPU runs them (a warning when not: nothing to compare), and a guard that
// enables them again however the test ends.
inline bool simd_to_compare() {
  if (kernels::have_simd()) return true;
  WARN("this CPU has no AVX-512: the kernels are not used here, nothing to compare");
  return false;
}
struct SimdRestore {
  ~SimdRestore() { kernels::enable_simd(true); }
};

// max |a_i - b_i| and max |b_i| over two equally long flat arrays (a result's states, row-major).
struct DiffAndScale {
  double diff = 0, scale = 0;
};
inline DiffAndScale diff_and_scale(const std::vector<double>& a, const std::vector<double>& b) {
  DiffAndScale out;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    out.scale = std::max(out.scale, std::abs(b[i]));
    out.diff = std::max(out.diff, std::abs(a[i] - b[i]));
  }
  return out;
}

// Tolerance that scales with the precision: `dbl` in double, `mp` in mp50.
template <class Scalar>
double tol(double dbl, double mp) {
  return per_precision<Scalar>(dbl, mp);
}

// tests/data/tiny_convergence.json: a 2-D Gaussian under vp-linear, three solvers, NFE 16-128.
// The headline's 2-D three-component mixture (eta, flow matching, ELBO suites).
inline nlohmann::json headline_mixture() {
  return {
      {"type", "gmm"},
      {"weights", {0.3, 0.45, 0.25}},
      {"means", {{-1.0, 0.3}, {0.8, 0.8}, {0.4, -1.0}}},
      {"covs", {{{0.5, 0.2}, {0.2, 0.35}}, {{0.6, -0.2}, {-0.2, 0.3}}, {{0.25, 0.0}, {0.0, 0.8}}}}};
}

// The same mixture with class labels: two classes, 0 = {0, 2} and 1 = {1} (guidance and
// class-conditional networks).
inline nlohmann::json labelled_mixture() {
  nlohmann::json m = headline_mixture();
  m["labels"] = {0, 1, 0};
  return m;
}

// A scalar SDE from its config, as the ScalarSde it is (alpha, sigma, lambda).
template <class Scalar = double>
std::unique_ptr<ScalarSde<Scalar>> make_scalar_sde(const nlohmann::json& config, int dim) {
  auto sde = make_sde<Scalar>(config, dim, "sde");
  return std::unique_ptr<ScalarSde<Scalar>>(dynamic_cast<ScalarSde<Scalar>*>(sde.release()));
}

// A time grid spec by its kind alone.
inline GridSpec grid_named(const std::string& kind) {
  GridSpec spec;
  spec.kind = kind;
  return spec;
}

// The solver ladder of the guided-order tests (analytic CFG and CFG of a network): six solvers
// of declared orders 1, 2, 3, 2, 4, 4 at NFE 48-768 from 3 particles.
inline void use_guided_order_ladder(nlohmann::json& c) {
  c["init"] = {{"count", 3}, {"seed", 5}};
  c["solvers"] = {"ddim",
                  "dpm-solver-2",
                  "dpm-solver-3",
                  "dpm-solver++-2m",
                  {{"name", "unipc"}, {"variant", "bh2"}, {"order", 3}, {"start", "singlestep"}},
                  "rk4"};
  c["nfe"] = {48, 96, 192, 384, 768};
}
inline constexpr double guided_ladder_orders[] = {1, 2, 3, 2, 4, 4};

inline nlohmann::json tiny_config() {
  std::ifstream in(std::string(PFLOW_TEST_DATA) + "/tiny_convergence.json");
  return nlohmann::json::parse(in);
}

// A file name in the system's temporary directory.
inline std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("pflow_test_" + name)).string();
}

}  // namespace pflow::testing
