#include "pflow/target/low_rank.hpp"

#include <array>
#include <cmath>
#include <limits>

#include <Eigen/Eigenvalues>
#include <Eigen/LU>
#include <Eigen/QR>

#include "pflow/core/lapack.hpp"
#include "pflow/target/random.hpp"

namespace pflow {

namespace {

// The sketches' seed (fixed: detection is deterministic).
constexpr std::uint64_t sketch_seed = 0x5ca1ab1eULL;
// A pivot of the sketch's QR counts towards the rank above this fraction of the largest one.
constexpr double rank_threshold = 1e-10;
// D is taken as c I when its entries agree to this relative spread (and the check passes).
constexpr double scaled_identity_spread = 1e-9;

// a b through BLAS (the sketches and range products are the detection's O(d^2 r) work).
Mat<double> product(const Mat<double>& a, const Mat<double>& b) {
  Mat<double> c(a.rows(), b.cols());
  blas_gemm(false, 1.0, a, b.data(), b.cols(), 0.0, c.data());
  return c;
}

// An orthonormal basis of the range of y and its numerical rank, by a column-pivoted QR.
struct RangeBasis {
  Mat<double> basis;
  int rank = 0;
};
RangeBasis range_basis(const Mat<double>& y) {
  Eigen::ColPivHouseholderQR<Mat<double>> qr(y);
  qr.setThreshold(rank_threshold);
  RangeBasis out;
  out.rank = static_cast<int>(qr.rank());
  out.basis = qr.householderQ() * Mat<double>::Identity(y.rows(), out.rank);
  return out;
}

// Step 3 and 4 for a given D: the factor of S - D and the check.
std::optional<LowRankPlusDiagonal> factor_and_check(const Mat<double>& s, const Vec<double>& diag,
                                                    int rank, double scale) {
  const Eigen::Index d = s.rows();
  Mat<double> rest = s;
  rest.diagonal() -= diag;
  Rng rng(sketch_seed + 1);
  const RangeBasis range = range_basis(product(rest, rng.normal_matrix<double>(d, rank + 8)));
  if (range.rank < rank) return std::nullopt;
  const Mat<double> q = range.basis.leftCols(rank);
  Mat<double> core = q.transpose() * product(rest, q);
  core = (core + core.transpose()).eval() / 2;
  const Eigen::SelfAdjointEigenSolver<Mat<double>> eig(core);
  if (eig.info() != Eigen::Success || !(eig.eigenvalues().minCoeff() > 0)) return std::nullopt;
  LowRankPlusDiagonal out;
  out.diagonal = diag;
  out.values = eig.eigenvalues().reverse();
  out.vectors = q * eig.eigenvectors().rowwise().reverse();
  rest -= lapack_gram(out.vectors * out.values.cwiseSqrt().asDiagonal());
  if (!rest.allFinite()) return std::nullopt;
  out.residual = rest.cwiseAbs().maxCoeff();
  // E = S - D - U diag(l) U^T: within the tolerance entry by entry; no larger (Frobenius) than
  // the backward error a dense factorisation of S is allowed, 16 d eps ||S||_F, so the structure
  // is as accurate as the dense path; and below min D / 2 <= lambda_min(D + U diag(l) U^T) / 2,
  // so S is positive definite.
  const double error = rest.norm();
  out.relative_change = error / diag.minCoeff();
  if (!(out.residual <= low_rank_tolerance * scale)) return std::nullopt;
  if (!(error <= 16.0 * static_cast<double>(d) * std::numeric_limits<double>::epsilon() * s.norm()))
    return std::nullopt;
  if (!(out.relative_change < 0.5)) return std::nullopt;
  return out;
}

}  // namespace

std::optional<LowRankPlusDiagonal> detect_low_rank_plus_diagonal(const Mat<double>& s) {
  const Eigen::Index d = s.rows();
  if (d < low_rank_min_dim || s.cols() != d) return std::nullopt;
  if (!s.allFinite()) return std::nullopt;
  const double scale = s.cwiseAbs().maxCoeff();
  if (!(scale > 0)) return std::nullopt;
  const int max_rank = static_cast<int>(d / 8), sketch = max_rank + 8;
  // Three contiguous, disjoint index blocks; block g's rows against block g + 1's columns hold
  // no diagonal entry of S.
  const std::array<Eigen::Index, 4> edge{0, d / 3, 2 * d / 3, d};
  const auto block = [&](int a, int b) -> Mat<double> {
    return s.block(edge[a], edge[b], edge[a + 1] - edge[a], edge[b + 1] - edge[b]);
  };

  // 1. The rank, and a basis of the range of W restricted to each block.
  Rng rng(sketch_seed);
  std::array<Mat<double>, 3> basis;
  int rank = -1;
  for (int g = 0; g < 3; ++g) {
    const Mat<double> off = block(g, (g + 1) % 3);
    const RangeBasis range =
        range_basis(product(off, rng.normal_matrix<double>(off.cols(), sketch)));
    if (range.rank == 0 || range.rank > max_rank || (rank >= 0 && range.rank != rank))
      return std::nullopt;
    rank = range.rank;
    basis[g] = range.basis;
  }

  // 2. diag(W W^T), block by block, from the two other blocks.
  Vec<double> low_rank_diagonal(d);
  for (int a = 0; a < 3; ++a) {
    const int b = (a + 1) % 3, c = (a + 2) % 3;
    const Mat<double> core = basis[c].transpose() * (block(c, b) * basis[b]);
    const Eigen::FullPivLU<Mat<double>> lu(core);
    if (!lu.isInvertible()) return std::nullopt;
    const Mat<double> left = block(a, b) * basis[b];
    const Mat<double> right = lu.solve((block(a, c) * basis[c]).transpose());
    for (Eigen::Index i = 0; i < left.rows(); ++i)
      low_rank_diagonal(edge[a] + i) = left.row(i).dot(right.col(i));
  }
  const Vec<double> diag = s.diagonal() - low_rank_diagonal;
  if (!(diag.minCoeff() > 0)) return std::nullopt;

  // 3 and 4, first with D = c I when the entries agree.
  const double mean = diag.mean();
  if ((diag.array() - mean).abs().maxCoeff() <= scaled_identity_spread * mean) {
    auto out = factor_and_check(s, Vec<double>::Constant(d, mean), rank, scale);
    if (out) {
      out->scaled_identity = true;
      return out;
    }
  }
  return factor_and_check(s, diag, rank, scale);
}

}  // namespace pflow
