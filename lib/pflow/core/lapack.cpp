#include "pflow/core/lapack.hpp"

#include <algorithm>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include <Eigen/Eigenvalues>

#include "pflow/core/errors.hpp"

// LAPACK and BLAS through their Fortran symbols (gfortran's convention: arguments by reference,
// one hidden length per character argument, at the end).
extern "C" {
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
             double* work, const int* lwork, int* iwork, const int* liwork, int* info, std::size_t,
             std::size_t);
void dgeqrf_(const int* m, const int* n, double* a, const int* lda, double* tau, double* work,
             const int* lwork, int* info);
void dorgqr_(const int* m, const int* n, const int* k, double* a, const int* lda, const double* tau,
             double* work, const int* lwork, int* info);
void dsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* beta, double* c, const int* ldc,
            std::size_t, std::size_t);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
            const double* beta, double* c, const int* ldc, std::size_t, std::size_t);
void openblas_set_num_threads(int threads);
}

namespace pflow {

namespace {

// One thread inside OpenBLAS, set once before the first call.
void lapack_threads() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

// A square matrix's order: n^2 and the eigensolver's workspace (1 + 6n + 2n^2) must fit LAPACK's
// 32-bit integers.
int checked_dim(Eigen::Index n, const char* what) {
  if (n > lapack_max_dim)
    throw NumericalError(std::string(what) + ": order " + std::to_string(n) +
                         " exceeds LAPACK's 32-bit index range (at most " +
                         std::to_string(lapack_max_dim) + ")");
  return static_cast<int>(n);
}
// Any other extent (a product's number of columns): it must fit an int.
int checked_extent(Eigen::Index n, const char* what) {
  if (n > std::numeric_limits<int>::max())
    throw NumericalError(std::string(what) + ": extent " + std::to_string(n) +
                         " exceeds BLAS's 32-bit integers");
  return static_cast<int>(n);
}

}  // namespace

SymmetricEigen lapack_symmetric_eigen(const Mat<double>& a) {
  lapack_threads();
  const int n = checked_dim(a.rows(), "symmetric eigensolver");
  SymmetricEigen out{Vec<double>(n), a};
  if (n == 0) return out;
  int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  dsyevd_("V", "L", &n, out.vectors.data(), &n, out.values.data(), &work_query, &lwork,
          &iwork_query, &liwork, &info, 1, 1);
  if (info != 0) throw NumericalError("dsyevd workspace query failed (info " + to_text(info) + ")");
  lwork = static_cast<int>(work_query);
  liwork = iwork_query;
  std::vector<double> work(static_cast<std::size_t>(lwork));
  std::vector<int> iwork(static_cast<std::size_t>(liwork));
  dsyevd_("V", "L", &n, out.vectors.data(), &n, out.values.data(), work.data(), &lwork,
          iwork.data(), &liwork, &info, 1, 1);
  if (info != 0)
    throw NumericalError("symmetric eigendecomposition (LAPACK dsyevd) did not converge (info " +
                         to_text(info) + ")");
  return out;
}

SymmetricEigen symmetric_eigen(const Mat<double>& a) {
  if (a.rows() > quad_eigen_max_dim) return lapack_symmetric_eigen(a);
  if (a.rows() < quad_eigen_min_dim) {
    const Eigen::SelfAdjointEigenSolver<Mat<double>> eig(a);
    if (eig.info() != Eigen::Success)
      throw NumericalError("symmetric eigendecomposition did not converge");
    return {eig.eigenvalues(), eig.eigenvectors()};
  }
  const Eigen::SelfAdjointEigenSolver<Mat<f128>> eig(a.cast<f128>());
  if (eig.info() != Eigen::Success)
    throw NumericalError("symmetric eigendecomposition (float128) did not converge");
  return {eig.eigenvalues().cast<double>(), eig.eigenvectors().cast<double>()};
}

Mat<double> lapack_orthogonal_factor(const Mat<double>& a) {
  lapack_threads();
  const int m = checked_dim(a.rows(), "QR factorisation");
  const int n = checked_dim(a.cols(), "QR factorisation");
  if (n > m) throw NumericalError("lapack_orthogonal_factor needs rows >= columns");
  Mat<double> q = a;
  if (n == 0) return q;
  std::vector<double> tau(static_cast<std::size_t>(n));
  int info = 0, lwork = -1;
  double query = 0;
  dgeqrf_(&m, &n, q.data(), &m, tau.data(), &query, &lwork, &info);
  lwork = static_cast<int>(query);
  std::vector<double> work(static_cast<std::size_t>(std::max(lwork, 1)));
  dgeqrf_(&m, &n, q.data(), &m, tau.data(), work.data(), &lwork, &info);
  if (info != 0) throw NumericalError("QR factorisation (LAPACK dgeqrf) failed");
  // R's diagonal, before dorgqr overwrites it with Q.
  const Vec<double> r_diag = q.diagonal();
  lwork = -1;
  dorgqr_(&m, &n, &n, q.data(), &m, tau.data(), &query, &lwork, &info);
  lwork = static_cast<int>(query);
  work.assign(static_cast<std::size_t>(std::max(lwork, 1)), 0.0);
  dorgqr_(&m, &n, &n, q.data(), &m, tau.data(), work.data(), &lwork, &info);
  if (info != 0) throw NumericalError("forming Q (LAPACK dorgqr) failed");
  for (int j = 0; j < n; ++j)
    if (r_diag(j) < 0) q.col(j) = -q.col(j);
  return q;
}

void blas_gemm(bool transpose_a, double alpha, const Mat<double>& a, const double* b,
               Eigen::Index b_cols, double beta, double* c) {
  lapack_threads();
  const int rows_a = checked_extent(a.rows(), "matrix product");
  const int cols_a = checked_extent(a.cols(), "matrix product");
  const int n = checked_extent(b_cols, "matrix product");
  const int m = transpose_a ? cols_a : rows_a, k = transpose_a ? rows_a : cols_a;
  if (m == 0 || n == 0) return;
  const int lda = std::max(rows_a, 1), ldb = std::max(k, 1), ldc = std::max(m, 1);
  dgemm_(transpose_a ? "T" : "N", "N", &m, &n, &k, &alpha, a.data(), &lda, b, &ldb, &beta, c, &ldc,
         1, 1);
}

Mat<double> lapack_gram(const Mat<double>& b) {
  lapack_threads();
  const int n = checked_dim(b.rows(), "Gram matrix");
  const int k = checked_extent(b.cols(), "Gram matrix");
  Mat<double> c(n, n);  // dsyrk with beta = 0 writes the lower triangle without reading it
  const double one = 1, zero = 0;
  const int lda = std::max(n, 1);
  if (k == 0) return Mat<double>::Zero(n, n);
  if (n > 0) dsyrk_("L", "N", &n, &k, &one, b.data(), &lda, &zero, c.data(), &lda, 1, 1);
  c.triangularView<Eigen::StrictlyUpper>() = c.transpose();
  return c;
}

}  // namespace pflow
