// Reproducible random numbers: the same seed gives the same draws on every platform and in
// every precision (std::normal_distribution is implementation-defined, so it is not used).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

#include "pflow/core/scalar.hpp"

namespace pflow {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}
  // Uniform on (0, 1) with 53 random bits.
  double uniform() {
    return (static_cast<double>(engine_() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  }
  // Standard normal by the Box-Muller transform (both values are used).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double phi = 2.0 * 3.14159265358979323846 * uniform();
    spare_ = r * std::sin(phi);
    has_spare_ = true;
    return r * std::cos(phi);
  }
  template <class Scalar>
  Mat<Scalar> normal_matrix(Eigen::Index rows, Eigen::Index cols) {
    Mat<Scalar> m(rows, cols);
    for (Eigen::Index c = 0; c < cols; ++c)
      for (Eigen::Index r = 0; r < rows; ++r) m(r, c) = from_double<Scalar>(normal());
    return m;
  }

 private:
  std::mt19937_64 engine_;
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace pflow
