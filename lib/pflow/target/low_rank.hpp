// Low rank plus diagonal structure in a dense covariance: S = D + U diag(l) U^T with D a positive
// diagonal, U d x r with orthonormal columns and r small (docs/NOTES.md sec. 3, "Structure in
// dense covariances"). Factor models and probabilistic PCA fits of image data give such
// covariances; found, they turn every O(d^2) product of the score into O(d r), the eigensolver's
// O(d^3) into O(d r^2) when D = c I, and make the Cholesky check unnecessary.
//
// Detection works on the dense matrix alone and costs O(d^2 r):
//  1. The rank. An off-diagonal block S[I, J] (I, J disjoint index sets) equals W_I W_J^T with
//     W = U diag(l)^{1/2}, so its rank is r. It is read from a pivoted QR of S[I, J] Omega, a
//     Gaussian sketch with d / 8 + 8 columns; no gap below d / 8 means "not low rank".
//  2. The diagonal of W W^T. With three disjoint blocks I_a, I_b, I_c and bases Q_b, Q_c of the
//     ranges of W_b, W_c, S[I_c, I_b] = Q_c B Q_b^T with B = Q_c^T S[I_c, I_b] Q_b (r x r) and, for
//     i in I_a, (W W^T)_ii = S[i, I_b] Q_b B^{-1} Q_c^T S[I_c, i] (each W_x of full column rank r).
//     Then D = diag(S) - diag(W W^T), which must be positive.
//  3. The factor. S - D has rank r: a sketch gives its range Q (d x r), and the eigenpairs of
//     Q^T (S - D) Q give U and l.
//  4. The check. E = S - D - U diag(l) U^T must have max |E| <= 1e-12 max |S|, ||E||_F <=
//     16 d eps ||S||_F (the backward error allowed a dense Cholesky or eigendecomposition of S:
//     the structure is then as faithful to S as the dense path) and ||E||_F < min D / 2 (then S
//     is positive definite, lambda_min(D + U diag(l) U^T) >= min D, without a Cholesky
//     factorisation). Anything else is left dense, so a false detection costs time, not
//     accuracy.
// The sketches come from a fixed seed: the result is deterministic.
#pragma once

#include <optional>

#include "pflow/core/scalar.hpp"

namespace pflow {

struct LowRankPlusDiagonal {
  Vec<double> diagonal;  // D, positive (every entry the same when scaled_identity)
  Mat<double> vectors;   // U, d x r, orthonormal columns
  Vec<double> values;    // l, positive, descending
  bool scaled_identity = false;
  double residual = 0;         // max |E|, E = S - D - U diag(l) U^T
  double relative_change = 0;  // ||E||_F / min D: bounds the relative change of every C_t^{-1}
  int rank() const { return static_cast<int>(values.size()); }
};

// From this dimension on dense covariances are examined; the rank found must be at most d / 8.
inline constexpr int low_rank_min_dim = 48;
// The check's entrywise tolerance: max |E| relative to max |S|.
inline constexpr double low_rank_tolerance = 1e-12;

// The structure of a symmetric d x d matrix s, or nothing if it has none within the tolerance (or
// d < low_rank_min_dim, or the rank exceeds d / 8).
std::optional<LowRankPlusDiagonal> detect_low_rank_plus_diagonal(const Mat<double>& s);

}  // namespace pflow
