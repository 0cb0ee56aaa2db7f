// Boost.Odeint with Eigen vectors of any scalar type: the one place for the shims.
//
// States are Vec<Scalar> (Eigen column vectors) with vector_space_algebra; matrices are
// flattened into vectors by the callers. Bulirsch-Stoer in mp50 (tolerance 1e-32 for the PF-ODE
// references, 1e-40 for the kernel ODEs) is the reference integrator (docs/NOTES.md sec. 8).
#pragma once

#include <boost/numeric/odeint.hpp>
#include <boost/numeric/odeint/external/eigen/eigen.hpp>

#include "pflow/core/errors.hpp"
#include "pflow/core/scalar.hpp"

namespace pflow {

namespace odeint = boost::numeric::odeint;

template <class Scalar>
using BulirschStoer =
    odeint::bulirsch_stoer<Vec<Scalar>, Scalar, Vec<Scalar>, Scalar, odeint::vector_space_algebra>;

// Integrates dx/dt = rhs(x, t) from t0 to t1 (either direction) with Bulirsch-Stoer at absolute
// and relative tolerance `tol`. Returns the number of right-hand-side evaluations.
template <class Scalar, class Rhs>
long integrate_bulirsch_stoer(Rhs&& rhs, Vec<Scalar>& x, const Scalar& t0, const Scalar& t1,
                              const Scalar& tol) {
  using std::abs;
  if (t0 == t1) return 0;
  long evaluations = 0;
  // Boost 1.74's bulirsch_stoer controls negative steps badly (a backward solve of
  // x' = -x(1 + t) took 90,000 evaluations instead of 360), so a backward solve runs forwards
  // in tau = -t: dx/dtau = -rhs(x, -tau).
  const bool backward = t1 < t0;
  auto system = [&](const Vec<Scalar>& state, Vec<Scalar>& dxdt, const Scalar tau) {
    ++evaluations;
    if (backward) {
      dxdt = -rhs(state, Scalar(-tau));
    } else {
      dxdt = rhs(state, tau);
    }
  };
  BulirschStoer<Scalar> stepper(tol, tol);
  const Scalar start = backward ? Scalar(-t0) : t0, end = backward ? Scalar(-t1) : t1;
  odeint::integrate_adaptive(stepper, std::ref(system), x, start, end, (end - start) / 64);
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    if (!(abs(x(i)) < std::numeric_limits<Scalar>::infinity()))
      throw NumericalError("Bulirsch-Stoer produced a non-finite state");
  }
  return evaluations;
}

}  // namespace pflow
