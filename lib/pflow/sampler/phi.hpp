// The phi-functions of exponential integrators (docs/NOTES.md sec. 4):
//   phi_0(z) = e^z,  phi_{k+1}(z) = (phi_k(z) - 1/k!) / z,  i.e. phi_k(z) = sum_j z^j / (j + k)!.
// The recurrence cancels catastrophically near z = 0 (at z = 1e-8 it returns ~1e8 for phi_3), so
// |z| < 1 uses the series, summed until the terms stop changing the sum; |z| >= 1 the recurrence,
// which there loses at most a few bits.
#pragma once

#include <cmath>

#include <boost/math/special_functions/expm1.hpp>

#include "pflow/core/errors.hpp"
#include "pflow/core/scalar.hpp"

namespace pflow {

template <class Scalar>
Scalar phi(int k, const Scalar& z) {
  using std::abs;
  using std::exp;
  require(k >= 0, "phi order", k, "must be non-negative");
  if (k == 0) return exp(z);
  if (abs(z) < 1) {
    Scalar factorial = 1;  // (j + k)! for j = 0
    for (int i = 2; i <= k; ++i) factorial *= i;
    Scalar term = 1 / factorial, sum = term;
    for (int j = 1; j < 200; ++j) {
      term *= z / (j + k);
      const Scalar next = sum + term;
      if (next == sum) break;
      sum = next;
    }
    return sum;
  }
  Scalar value = boost::math::expm1(z) / z;  // phi_1
  Scalar inverse_factorial = 1;              // 1/k! for the step phi_k -> phi_{k+1}
  for (int i = 1; i < k; ++i) {
    value = (value - inverse_factorial) / z;
    inverse_factorial /= (i + 1);
  }
  return value;
}

}  // namespace pflow
