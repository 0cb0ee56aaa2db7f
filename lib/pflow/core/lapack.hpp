// Dense double-precision factorisations through LAPACK (OpenBLAS's blocked, cache-aware routines)
// where Eigen's own are the bottleneck at image-sized dimensions: the symmetric eigensolver
// (Eigen's tridiagonalisation is unblocked: 46 s at d = 3072 on one core, against seconds here)
// and the QR factorisation behind random orthogonal matrices.
//
// OpenBLAS runs on one thread inside these calls (lapack_threads): a result then does not depend
// on how many threads the machine or the run has, and the run's own threads stay its own.
#pragma once

#include "pflow/core/scalar.hpp"

namespace pflow {

// A = V diag(values) V^T for symmetric A (its lower triangle is read), eigenvalues ascending,
// by LAPACK's divide-and-conquer dsyevd. Throws NumericalError if it does not converge.
struct SymmetricEigen {
  Vec<double> values;
  Mat<double> vectors;
};
SymmetricEigen lapack_symmetric_eigen(const Mat<double>& a);

// The orthogonal factor Q of A = Q R (A m x n, m >= n; Q m x n with orthonormal columns), by
// dgeqrf and dorgqr, with the signs of Q's columns chosen so that R has a positive diagonal: for
// A with independent standard normal entries Q is then Haar-distributed (on the orthogonal group
// for square A, on the Stiefel manifold otherwise).
Mat<double> lapack_orthogonal_factor(const Mat<double>& a);

// B B^T (exactly symmetric: one triangle by dsyrk, mirrored).
Mat<double> lapack_gram(const Mat<double>& b);

// C = alpha op(A) B + beta C with op(A) = A or A^T (BLAS dgemm, column-major, C sized by the
// caller). Eigen's own product is built for SSE2 here (no -march), OpenBLAS picks the machine's
// kernels at run time (AVX-512 on this one): 3-4x faster on the image-sized Gaussian's score.
void blas_gemm(bool transpose_a, double alpha, const Mat<double>& a, const double* b,
               Eigen::Index b_cols, double beta, double* c);

// The largest order of a square LAPACK factorisation here: the eigensolver's workspace,
// 1 + 6n + 2n^2, must fit a 32-bit integer.
inline constexpr int lapack_max_dim = 32000;

// The symmetric eigendecomposition of double data (eigenvalues ascending; NumericalError if it
// does not converge), as accurate as double allows where that is cheap. From quad_eigen_min_dim
// to quad_eigen_max_dim it runs in float128 (Eigen's SelfAdjointEigenSolver; 47 ms at d = 64)
// and is rounded: the eigenvalues and the orthogonality of the vectors are then right to the last
// bits, where a double decomposition loses ~d ulps to rounding, and a dense Gaussian's score,
// which is made from them, is as accurate as a Cholesky factor per t would make it (README
// "Speed": a mixture solve's error against float128 fell 3.4x at d = 16). Above it, LAPACK's
// dsyevd in double (0.35 s in float128 at d = 128, minutes at d = 3072).
// Below quad_eigen_min_dim, Eigen's solver in double: a few ulps there, and the same arithmetic
// as before for the 2-D runs.
inline constexpr int quad_eigen_min_dim = 5, quad_eigen_max_dim = 64;
SymmetricEigen symmetric_eigen(const Mat<double>& a);

}  // namespace pflow
