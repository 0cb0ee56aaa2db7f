// Shared helpers for the Catch2 suites.
#pragma once

#include <catch2/catch.hpp>

#include "pflow/core/scalar.hpp"

namespace pflow::testing {

// max |a - b| as a double.
template <class A, class B>
double max_diff(const A& a, const B& b) {
  return to_double((a - b).cwiseAbs().maxCoeff());
}

// Tolerance that scales with the precision: `dbl` in double, `mp` in mp50.
template <class Scalar>
double tol(double dbl, double mp) {
  return per_precision<Scalar>(dbl, mp);
}

}  // namespace pflow::testing
