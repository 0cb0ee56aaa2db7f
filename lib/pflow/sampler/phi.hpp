// The phi-functions of exponential integrators (docs/NOTES.md sec. 4):
//   phi_0(z) = e^z,  phi_{k+1}(z) = (phi_k(z) - 1/k!) / z,  i.e. phi_k(z) = sum_j z^j / (j + k)!.
// phi_1 = expm1(z) / z, which cancels nowhere. For k >= 2 the recurrence cancels
// catastrophically near z = 0 (at z = 1e-8 it returns ~1e8 for phi_3), so on -3 < z < 4 the
// series is used, nested as (1/k!) (1 + z/(k+1) (1 + z/(k+2) (1 + ...))) and evaluated from its
// last term: each rounding made early is damped by |z| / (k + j) before the next. Outside that
// interval the recurrence from phi_1, which cancels little there (series on z < -3 would: its
// terms alternate and reach e^|z| times the sum). In double, against 50 digits: within 2 ulps
// for k = 1..4 on -8 <= z <= 8 (tests/test_samplers.cpp).
//
// Solvers that need z phi_1(z) = e^z - 1 take boost::math::expm1 directly (one rounding, not
// three): in DPM-Solver++(2M) the product form's few-ulp error in that one coefficient, the same
// for every particle and step, was most of the double solve's error against float128.
#pragma once

#include <cmath>
#include <limits>

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
  if (k == 1) return z == 0 ? Scalar(1) : Scalar(boost::math::expm1(z) / z);
  Scalar factorial = 1;  // k!, exact for every k a solver uses
  for (int i = 2; i <= k; ++i) factorial *= i;
  if (z > -3 && z < 4) {
    // n terms after the first: |z|^n / ((k + 1) ... (k + n)) below a quarter of epsilon.
    const Scalar negligible = std::numeric_limits<Scalar>::epsilon() / 4;
    int n = 0;
    for (Scalar term = 1; term > negligible && n < 1000; term *= abs(z) / (k + n)) ++n;
    Scalar nested = 1;
    for (int j = n; j >= 1; --j) nested = 1 + z * nested / (k + j);
    return nested / factorial;
  }
  Scalar value = phi(1, z);
  Scalar inverse_factorial = 1;  // 1/i! for the step phi_i -> phi_{i+1}
  for (int i = 1; i < k; ++i) {
    value = (value - inverse_factorial) / z;
    inverse_factorial /= (i + 1);
  }
  return value;
}

}  // namespace pflow
