// A fixed Brownian path for the stochastic samplers, so that strong errors can be measured: the
// increments of 2^levels uniform intervals of [t_lo, t_hi] are drawn once from the seed, and an
// increment between two points of that dyadic grid is the sum of the fine ones. Solves on every
// time-uniform grid with 2^k <= 2^levels steps then see the same path.
#pragma once

#include <cmath>
#include <optional>

#include "pflow/core/errors.hpp"
#include "pflow/target/random.hpp"

namespace pflow {

template <class Scalar>
class BrownianPath {
 public:
  BrownianPath(std::uint64_t seed, Eigen::Index rows, Eigen::Index cols, const Scalar& t_lo,
               const Scalar& t_hi, int levels)
      : rows_(rows), cols_(cols), t_lo_(t_lo), t_hi_(t_hi), intervals_(1L << levels) {
    using std::sqrt;
    Rng rng(seed);
    const Scalar scale = sqrt((t_hi - t_lo) / Scalar(intervals_));
    cumulative_.reserve(intervals_ + 1);
    cumulative_.push_back(Mat<Scalar>::Zero(rows, cols));
    for (long i = 0; i < intervals_; ++i)
      cumulative_.push_back(cumulative_.back() + scale * rng.normal_matrix<Scalar>(rows, cols));
  }
  // The index of t on the dyadic grid, or nullopt when t is not one of its points.
  std::optional<long> index(const Scalar& t) const {
    using std::abs;
    using std::round;
    const Scalar u = (t - t_lo_) / (t_hi_ - t_lo_) * Scalar(intervals_);
    const Scalar nearest = round(u);
    if (abs(Scalar(u - nearest)) > Scalar(1e-6)) return std::nullopt;
    return static_cast<long>(static_cast<double>(nearest));
  }
  // W(b) - W(a).
  Mat<Scalar> increment(long a, long b) const { return cumulative_[b] - cumulative_[a]; }

 private:
  Eigen::Index rows_, cols_;
  Scalar t_lo_, t_hi_;
  long intervals_;
  std::vector<Mat<Scalar>> cumulative_;
};

}  // namespace pflow
