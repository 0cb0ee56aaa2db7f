// Scalar types of pflow and the glue that lets Eigen and Boost.Odeint use them.
//
// Every numerical component is a template on `Scalar` and is instantiated for `double` and
// `mp50` (boost::multiprecision::cpp_bin_float_50, 50 decimal digits). Constants are written as
// exact ratios through `ratio<Scalar>(p, q)` so that the 50-digit runs are not stopped at double
// round-off by a stray double literal.
#pragma once

#include <Eigen/Core>
#include <boost/math/constants/constants.hpp>
#include <boost/math/special_functions/expm1.hpp>
#include <boost/math/special_functions/log1p.hpp>
#include <boost/multiprecision/cpp_bin_float.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

namespace pflow {

using mp50 = boost::multiprecision::cpp_bin_float_50;

template <class Scalar>
using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
template <class Scalar>
using Vec = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

// The exact rational p/q in the working precision.
template <class Scalar>
inline Scalar ratio(long p, long q = 1) {
  return Scalar(p) / Scalar(q);
}

template <class Scalar>
inline Scalar pi() {
  return boost::math::constants::pi<Scalar>();
}

// Converts a decimal string or a double given by a user to the working precision. Values typed
// in a config are decimal strings at heart: converting "0.1" directly keeps all 50 digits.
template <class Scalar>
inline Scalar from_double(double v) {
  if constexpr (std::is_same_v<Scalar, double>) {
    return v;
  } else {
    // Shortest round-trip decimal representation, then exact decimal conversion.
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    double back = std::strtod(buf, nullptr);
    for (int digits = 1; digits <= 17; ++digits) {
      std::snprintf(buf, sizeof buf, "%.*g", digits, v);
      back = std::strtod(buf, nullptr);
      if (back == v) break;
    }
    return Scalar(std::string(buf));
  }
}

// A decimal literal in the working precision: all 50 digits of "0.2218100610414..." survive.
template <class Scalar>
inline Scalar decimal(const char* text) {
  if constexpr (std::is_same_v<Scalar, double>) {
    return std::strtod(text, nullptr);
  } else {
    return Scalar(text);
  }
}

template <class Scalar>
inline double to_double(const Scalar& x) {
  return static_cast<double>(x);
}

template <class Scalar>
inline Scalar eps() {
  return std::numeric_limits<Scalar>::epsilon();
}

// log(1 + e^x) without overflow or cancellation.
template <class Scalar>
inline Scalar softplus(const Scalar& x) {
  using std::exp;
  if (x > 0) return x + boost::math::log1p(Scalar(exp(-x)));
  return boost::math::log1p(Scalar(exp(x)));
}

template <class Scalar>
inline std::string scalar_name() {
  if constexpr (std::is_same_v<Scalar, double>) {
    return "double";
  } else {
    return "mp50";
  }
}

}  // namespace pflow

// Eigen needs complete numeric traits for the 50-digit type (Boost 1.74's own header is
// incomplete for Eigen 3.4: SelfAdjointEigenSolver does not compile with it).
namespace Eigen {
template <>
struct NumTraits<pflow::mp50> : GenericNumTraits<pflow::mp50> {
  using Real = pflow::mp50;
  using NonInteger = pflow::mp50;
  using Literal = pflow::mp50;
  using Nested = pflow::mp50;
  enum {
    IsComplex = 0,
    IsInteger = 0,
    IsSigned = 1,
    RequireInitialization = 1,
    ReadCost = 1,
    AddCost = 4,
    MulCost = 8
  };
  static Real epsilon() { return std::numeric_limits<Real>::epsilon(); }
  static Real dummy_precision() { return Real(1000) * epsilon(); }
  static Real highest() { return (std::numeric_limits<Real>::max)(); }
  static Real lowest() { return std::numeric_limits<Real>::lowest(); }
  static Real infinity() { return std::numeric_limits<Real>::infinity(); }
  static Real quiet_NaN() { return std::numeric_limits<Real>::quiet_NaN(); }
  static int digits10() { return std::numeric_limits<Real>::digits10; }
  static int digits() { return std::numeric_limits<Real>::digits; }
  static int min_exponent() { return std::numeric_limits<Real>::min_exponent; }
  static int max_exponent() { return std::numeric_limits<Real>::max_exponent; }
};
}  // namespace Eigen
