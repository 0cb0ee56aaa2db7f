#!/usr/bin/python3
"""Taylor checks of the x0-form multistep updates of DPM-Solver++ (docs/NOTES.md sec. 4).

The exact step of the PF-ODE in the data-prediction form is
    x_t = (sigma_t/sigma_s) x_s + alpha_t int_0^h e^{tau - h} x0(lambda_s + tau) dtau,
h = lambda_t - lambda_s.  With x0 = m0 + m1 tau + m2 tau^2/2 (a quadratic in lambda, history
points at tau = -h0 and tau = -h0 - h1) we compare the integral with the updates:
  * 2M:  -alpha_t phi1 (m0 + D1_0/2): local error O(h^3), order 2, not exact for linear x0;
  * 3M (reference implementation): D2 = (D1_0 - D1_1)/(r0 + r1) = h^2 m2 / 2, weighted by
    -alpha_t phi3, while the Taylor term needs h^2 m2: the residual alpha_t phi3 h^2 m2 / 2 is
    O(h^3) per step, so 3M as published is second order;
  * 3M-corrected (pflow): weight 2 D2: exact for every quadratic.
phi1 = e^{-h} - 1, phi2 = phi1/h + 1, phi3 = phi2/h - 1/2 as in the reference code.
"""
import sympy as sp
from checks import check, is_zero

h, h0, h1, m0, m1, m2, tau = sp.symbols("h h0 h1 m0 m1 m2 tau", positive=True)
alpha_t = sp.Symbol("alpha_t", positive=True)


def x0(u):
    return m0 + m1 * u + m2 * u**2 / 2


# The exact increment alpha_t int_0^h e^{tau - h} x0(tau) dtau (the x_s part is common).
exact = alpha_t * sp.integrate(sp.exp(tau - h) * x0(tau), (tau, 0, h))

phi1 = sp.exp(-h) - 1
phi2 = phi1 / h + 1
phi3 = phi2 / h - sp.Rational(1, 2)
check(is_zero(alpha_t * sp.integrate(sp.exp(tau - h), (tau, 0, h)) + alpha_t * phi1),
      "int e^{tau-h} = -phi1")
check(is_zero(sp.integrate(sp.exp(tau - h) * tau, (tau, 0, h)) - h * phi2),
      "int e^{tau-h} tau = h phi2")
check(is_zero(sp.integrate(sp.exp(tau - h) * tau**2 / 2, (tau, 0, h)) + h**2 * phi3),
      "int e^{tau-h} tau^2/2 = -h^2 phi3")

r0, r1 = h0 / h, h1 / h
past1, past2 = x0(-h0), x0(-h0 - h1)
d1_0 = (m0 - past1) / r0
d1_1 = (past1 - past2) / r1
d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1)
d2 = (d1_0 - d1_1) / (r0 + r1)
check(is_zero(d1 - h * m1), "3M: D1 = h x0' exactly for a quadratic")
check(is_zero(d2 - h**2 * m2 / 2), "3M: D2 = h^2 x0''/2 (half the Taylor term h^2 x0'')")

published = -alpha_t * phi1 * m0 + alpha_t * phi2 * d1 - alpha_t * phi3 * d2
corrected = -alpha_t * phi1 * m0 + alpha_t * phi2 * d1 - alpha_t * phi3 * 2 * d2
check(is_zero(corrected - exact), "3M-corrected integrates every quadratic x0 exactly")
residual = sp.simplify(published - exact)
check(is_zero(residual - alpha_t * phi3 * h**2 * m2 / 2), "3M residual = alpha_t phi3 h^2 m2 / 2")
leading = sp.series(residual / (alpha_t * m2), h, 0, 5).removeO()
check(is_zero(leading - sp.series(phi3 * h**2 / 2, h, 0, 5).removeO()),
      "3M residual expansion")
check(sp.limit(residual / (alpha_t * m2 * h**3), h, 0) == sp.Rational(-1, 12),
      "3M local error = -h^3 x0''/12 + O(h^4): global order 2")

# 2M on a linear x0: local error O(h^3).
lin_exact = alpha_t * sp.integrate(sp.exp(tau - h) * (m0 + m1 * tau), (tau, 0, h))
d = m0 + (m0 - (m0 - m1 * h0)) / r0 / 2
two_m = -alpha_t * phi1 * d
err2 = sp.simplify(two_m - lin_exact)
check(sp.limit(err2 / (alpha_t * m1 * h**3), h, 0) == sp.Rational(-1, 12),
      "2M local error on linear x0 = -h^3 x0'/12 + O(h^4): order 2, not exact")
