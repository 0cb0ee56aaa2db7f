// The sliced Wasserstein-2 distance between two samples of equal size (docs/NOTES.md sec. 11):
//
//   SW2(X, Y)^2 = (1/L) sum_l W2(theta_l . X, theta_l . Y)^2,
//   W2(a, b)^2  = (1/n) sum_i (a_(i) - b_(i))^2   (1-D, equal sizes: the sorted values pair up),
//
// theta_l uniform on the unit sphere (normalised Gaussian vectors from a seed), the same L
// directions for every pair compared, so distances of one run differ only by their samples.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "pflow/core/errors.hpp"
#include "pflow/target/random.hpp"

namespace pflow {

// `count` unit vectors in R^dim (the columns), from `seed`.
inline Mat<double> random_directions(int dim, int count, std::uint64_t seed) {
  Rng rng(seed);
  Mat<double> theta = rng.normal_matrix<double>(dim, count);
  for (int l = 0; l < count; ++l) theta.col(l).normalize();
  return theta;
}

// SW2 between the columns of x and y (d x n each) over the directions (d x L).
inline double sliced_w2(const Mat<double>& x, const Mat<double>& y, const Mat<double>& theta) {
  require(x.rows() == y.rows() && x.rows() == theta.rows(), "sliced W2", to_text(x.rows()),
          "needs samples and directions of one dimension");
  require(x.cols() == y.cols() && x.cols() > 0, "sliced W2",
          to_text(x.cols()) + " vs " + to_text(y.cols()), "needs two samples of one size");
  const Mat<double> px = theta.transpose() * x, py = theta.transpose() * y;  // L x n
  double total = 0;
  std::vector<double> a(static_cast<size_t>(x.cols())), b(a.size());
  for (Eigen::Index l = 0; l < theta.cols(); ++l) {
    for (Eigen::Index i = 0; i < x.cols(); ++i) {
      a[i] = px(l, i);
      b[i] = py(l, i);
    }
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    double w2 = 0;
    for (size_t i = 0; i < a.size(); ++i) w2 += (a[i] - b[i]) * (a[i] - b[i]);
    total += w2 / static_cast<double>(a.size());
  }
  return std::sqrt(total / static_cast<double>(theta.cols()));
}

}  // namespace pflow
