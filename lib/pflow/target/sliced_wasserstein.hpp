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

// The projections of the columns of y (d x n) on the directions (d x L), each direction's sorted
// (n x L: column l holds the sorted values theta_l . y_i).
inline Mat<double> sorted_projections(const Mat<double>& y, const Mat<double>& theta) {
  require(y.rows() == theta.rows(), "sliced W2", to_text(y.rows()),
          "needs samples and directions of one dimension");
  Mat<double> p = y.transpose() * theta;
  for (Eigen::Index l = 0; l < p.cols(); ++l)
    std::sort(p.col(l).data(), p.col(l).data() + p.rows());
  return p;
}

// SW2 between the columns of x (d x n) and a sample of n points given by its sorted projections
// on the same directions (sorted_projections).
inline double sliced_w2_sorted(const Mat<double>& x, const Mat<double>& sorted_y,
                               const Mat<double>& theta) {
  require(x.cols() == sorted_y.rows() && x.cols() > 0, "sliced W2",
          to_text(x.cols()) + " vs " + to_text(sorted_y.rows()), "needs two samples of one size");
  const Mat<double> px = sorted_projections(x, theta);
  return std::sqrt((px - sorted_y).squaredNorm() / static_cast<double>(px.size()));
}

// SW2 between the columns of x and y (d x n each) over the directions (d x L).
inline double sliced_w2(const Mat<double>& x, const Mat<double>& y, const Mat<double>& theta) {
  require(x.cols() == y.cols() && x.cols() > 0, "sliced W2",
          to_text(x.cols()) + " vs " + to_text(y.cols()), "needs two samples of one size");
  return sliced_w2_sorted(x, sorted_projections(y, theta), theta);
}

// The RMS over R replicates Y_r of SW2(x, Y_r), sqrt((1/R) sum_r SW2(x, Y_r)^2): `own` holds the
// sorted projections of x, sorted_replicate(r) those of Y_r (n x L each).
template <class SortedReplicate>
double rms_sliced_w2(const Mat<double>& own, int replicates, SortedReplicate&& sorted_replicate) {
  double square = 0;
  for (int r = 0; r < replicates; ++r)
    square +=
        (own - sorted_replicate(r)).squaredNorm() / static_cast<double>(own.size() * replicates);
  return std::sqrt(square);
}

}  // namespace pflow
