// Dense linear algebra that Eigen does not give for an arbitrary scalar type: the matrix
// exponential (for Van Loan's block formula) and the Lyapunov equation (for equilibria).
#pragma once

#include <Eigen/LU>

#include "pflow/core/errors.hpp"
#include "pflow/core/scalar.hpp"

namespace pflow {

// exp(A) by scaling and squaring with a Taylor series summed to the working precision.
// Independent of Eigen's unsupported MatrixFunctions (whose Pade tables stop at 113 bits).
template <class Scalar>
Mat<Scalar> expm(const Mat<Scalar>& a) {
  using std::abs;
  const Eigen::Index n = a.rows();
  // Scale so that ||A / 2^s||_1 <= 1/2: the series then converges like 2^-k / k!.
  Scalar norm = 0;
  for (Eigen::Index c = 0; c < n; ++c) norm = std::max<Scalar>(norm, a.col(c).cwiseAbs().sum());
  int squarings = 0;
  while (norm > Scalar(1) / 2) {
    norm /= 2;
    ++squarings;
  }
  const Mat<Scalar> scaled = a / Scalar(pow(Scalar(2), squarings));
  Mat<Scalar> term = Mat<Scalar>::Identity(n, n);
  Mat<Scalar> sum = term;
  for (int k = 1; k < 200; ++k) {
    term = (term * scaled) / Scalar(k);
    sum += term;
    Scalar tnorm = term.cwiseAbs().maxCoeff();
    if (tnorm <= eps<Scalar>() * Scalar(1) / 16) break;
  }
  for (int s = 0; s < squarings; ++s) sum = sum * sum;
  return sum;
}

// Solves A X + X A^T + C = 0 for X (A stable). Vectorised: (I (x) A + A (x) I) vec X = -vec C.
// Meant for the small blocks of structured SDEs and small dense problems (n <= ~40).
template <class Scalar>
Mat<Scalar> solve_lyapunov(const Mat<Scalar>& a, const Mat<Scalar>& c) {
  const Eigen::Index n = a.rows();
  Mat<Scalar> k = Mat<Scalar>::Zero(n * n, n * n);
  // vec(A X) = (I (x) A) vec X, vec(X A^T) = (A (x) I) vec X with column-major vec.
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < n; ++j) {
      for (Eigen::Index p = 0; p < n; ++p) {
        k(j * n + i, j * n + p) += a(i, p);  // (A X)_{ij} = sum_p A_ip X_pj
        k(j * n + i, p * n + i) += a(j, p);  // (X A^T)_{ij} = sum_p X_ip A_jp
      }
    }
  Vec<Scalar> rhs = -Eigen::Map<const Vec<Scalar>>(c.data(), n * n);
  Eigen::FullPivLU<Mat<Scalar>> lu(k);
  if (!lu.isInvertible())
    throw NumericalError("Lyapunov equation is singular: the drift has no stable equilibrium");
  Vec<Scalar> x = lu.solve(rhs);
  return Eigen::Map<Mat<Scalar>>(x.data(), n, n);
}

}  // namespace pflow
