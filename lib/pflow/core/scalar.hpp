// Scalar types of pflow and the glue that lets Eigen and Boost.Odeint use them.
//
// Every numerical component is a template on `Scalar` and is instantiated for `double`, `f128`
// (boost::multiprecision::float128, IEEE quadruple precision over GCC's libquadmath: 113-bit
// significand, ~34 digits, in hardware-friendly software ~4x the cost of double per operation
// and ~10x less than mp50 for exp and log) and `mp50` (boost::multiprecision::cpp_bin_float_50,
// 50 decimal digits); ScalarTraits holds what differs between them. Constants are written as
// exact ratios through `ratio<Scalar>(p, q)` so that the 50-digit runs are not stopped at double
// round-off by a stray double literal.
#pragma once

#include <Eigen/Core>
#include <boost/math/constants/constants.hpp>
#include <boost/math/special_functions/expm1.hpp>
#include <boost/math/special_functions/log1p.hpp>
#include <boost/multiprecision/cpp_bin_float.hpp>
#include <boost/multiprecision/float128.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <type_traits>

namespace pflow {

using mp50 = boost::multiprecision::cpp_bin_float_50;
using f128 = boost::multiprecision::float128;

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

// The shortest decimal text that reads back as v ("0.1", not "0.10000000000000001").
inline std::string shortest_decimal(double v) {
  char buf[64];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

// What pflow needs to know about a number type, in one place: its name, how literals and user
// values enter it, and the tolerances and rule sizes its precision calls for. The primary
// template is left undefined, so a type without a specialisation does not compile. A new number
// type is a specialisation here plus its explicit instantiations (instantiate.cpp,
// registry_mp50.cpp, verify_mp50.cpp name the pattern).
template <class Scalar>
struct ScalarTraits;

template <>
struct ScalarTraits<double> {
  static constexpr const char* name = "double";
  static constexpr int digits10 = 15;
  static constexpr int print_digits = 17;  // round-trip
  static constexpr bool is_reference = false;
  static double from_double(double v) { return v; }
  static double decimal(const char* text) { return std::strtod(text, nullptr); }
  // Bulirsch-Stoer tolerance of the PF-ODE reference solve (pf_ode.hpp).
  static double reference_tolerance() { return 1e-14; }
  // Tolerance of the kernel ODEs: Lyapunov, transition, R-ODE (kernel_numeric.hpp).
  static double ode_tolerance() { return 1e-15; }
  // Gauss-Legendre nodes of the DEIS / gDDIM step integrals: double round-off for |h| <~ 3.
  static constexpr int step_quadrature_nodes = 24;
  // Central-difference step of the finite-difference checks: ~eps^(1/3).
  static double difference_step() { return 1e-5; }
};

template <>
struct ScalarTraits<f128> {
  static constexpr const char* name = "float128";
  static constexpr int digits10 = 33;
  static constexpr int print_digits = 36;  // round-trip
  // References of double runs are solved in f128 (README "References"), but its own runs and
  // order problems take theirs from mp50.
  static constexpr bool is_reference = false;
  static f128 from_double(double v) { return f128(shortest_decimal(v).c_str()); }
  static f128 decimal(const char* text) { return f128(text); }
  // 1e-28: six digits above its epsilon (1.9e-34), so that round-off accumulated over a
  // Bulirsch-Stoer solve of a few thousand steps stays below the tolerance.
  static f128 reference_tolerance() { return f128("1e-28"); }
  static f128 ode_tolerance() { return f128("1e-30"); }
  static constexpr int step_quadrature_nodes = 48;
  static f128 difference_step() { return f128("1e-11"); }  // ~eps^(1/3)
};

template <>
struct ScalarTraits<mp50> {
  static constexpr const char* name = "mp50";
  static constexpr int digits10 = 50;
  static constexpr int print_digits = 50;
  // The type references are computed in (exact flows, the Bulirsch-Stoer solve).
  static constexpr bool is_reference = true;
  // A user's double is a decimal at heart: its shortest decimal form converts exactly, so that
  // "0.1" keeps all 50 digits.
  static mp50 from_double(double v) { return mp50(shortest_decimal(v)); }
  static mp50 decimal(const char* text) { return mp50(text); }
  static mp50 reference_tolerance() { return mp50("1e-32"); }
  static mp50 ode_tolerance() { return mp50("1e-40"); }
  static constexpr int step_quadrature_nodes = 64;
  static mp50 difference_step() { return mp50("1e-15"); }
};

// Converts a double given by a user to the working precision (ScalarTraits::from_double).
template <class Scalar>
inline Scalar from_double(double v) {
  return ScalarTraits<Scalar>::from_double(v);
}

// A decimal literal in the working precision: all 50 digits of "0.2218100610414..." survive.
template <class Scalar>
inline Scalar decimal(const char* text) {
  return ScalarTraits<Scalar>::decimal(text);
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
  return ScalarTraits<Scalar>::name;
}

// A value per number type, for tables of tolerances written per precision: `dbl` in double,
// `mp` in mp50. In f128 a tolerance scales with the epsilon from double's, dbl * eps(f128) /
// eps(double) = dbl * 2^-60, floored at mp50's; any other type is a compile error until its
// column is added.
template <class Scalar>
constexpr double per_precision(double dbl, double mp) {
  static_assert(std::is_same_v<Scalar, double> || std::is_same_v<Scalar, f128> ||
                    std::is_same_v<Scalar, mp50>,
                "per_precision: no column for this number type");
  if constexpr (std::is_same_v<Scalar, f128>) {
    const double scaled = dbl * 0x1p-60;
    return scaled > mp ? scaled : mp;
  }
  return std::is_same_v<Scalar, double> ? dbl : mp;
}

}  // namespace pflow

// Eigen needs complete numeric traits for the multiprecision types (Boost 1.74's own header is
// incomplete for Eigen 3.4: SelfAdjointEigenSolver does not compile with it).
namespace pflow {
template <class Real, int add_cost, int mul_cost>
struct MultiprecisionNumTraits : Eigen::GenericNumTraits<Real> {
  using NonInteger = Real;
  using Literal = Real;
  using Nested = Real;
  enum {
    IsComplex = 0,
    IsInteger = 0,
    IsSigned = 1,
    RequireInitialization = 1,
    ReadCost = 1,
    AddCost = add_cost,
    MulCost = mul_cost
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
}  // namespace pflow

namespace Eigen {
template <>
struct NumTraits<pflow::mp50> : pflow::MultiprecisionNumTraits<pflow::mp50, 4, 8> {
  using Real = pflow::mp50;
};
template <>
struct NumTraits<pflow::f128> : pflow::MultiprecisionNumTraits<pflow::f128, 2, 4> {
  using Real = pflow::f128;
};
}  // namespace Eigen
