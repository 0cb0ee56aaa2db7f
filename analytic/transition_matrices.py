#!/usr/bin/python3
"""Symbolic verification of transition matrices Psi(t, s) of linear forward SDEs.

For du = F(t) u dt + G(t) dw the transition matrix satisfies
    d/dt Psi(t, s) = F(t) Psi(t, s),  Psi(s, s) = I,
    Psi(t, s) Psi(s, r) = Psi(t, r)   (semigroup / cocycle property).
Checked for
  * scalar SDEs: Psi(t, s) = alpha_t / alpha_s (vp-linear, vp-cosine, sub-vp, ve, edm),
    plus alpha_t / alpha_s = exp(int_s^t f) where sympy can integrate f;
  * CLD: Psi(t, s) = Psi(t - s, 0) with the critically damped closed form;
  * blurring diffusion per DCT frequency: Psi_i(t, s) = alpha_i(t) / alpha_i(s).
Run with /usr/bin/python3 (sympy).  Exits 1 on the first failing check.
"""
import sys

import sympy as sp
from checks import check, is_zero  # noqa: E402  (same folder)






# time arguments: Psi(t, s), semigroup with intermediate times t >= s >= r
t, s, r = sp.symbols("t s r", nonnegative=True)
q = sp.Symbol("q", nonnegative=True)          # dummy integration variable
b0, b1, s_cos, s_min, s_max = sp.symbols("b0 b1 s_cos s_min s_max", positive=True)
sB, lam = sp.symbols("sigma_B lambda_k", nonnegative=True)


def vp_alpha(x):
    return sp.exp(-x**2 * (b1 - b0) / 4 - x * b0 / 2)


def vp_f(x):
    return -(b0 + (b1 - b0) * x) / 2                     # f = -beta(t)/2


def cos_alpha(x):
    return sp.cos(sp.pi / 2 * (x + s_cos) / (1 + s_cos)) / sp.cos(sp.pi / 2 * s_cos / (1 + s_cos))


def cos_f(x):
    return -sp.pi / (2 * (1 + s_cos)) * sp.tan(sp.pi / 2 * (x + s_cos) / (1 + s_cos))


def blur_tau(x):
    return sB**2 * sp.sin(sp.pi * x / 2)**2 / 2           # tau(t) = sB^2 sin^2(pi t/2)/2


def blur_alpha(x):
    return vp_alpha(x) * sp.exp(-lam * blur_tau(x))


def blur_f(x):
    return vp_f(x) - lam * sB**2 * sp.pi * sp.sin(sp.pi * x) / 4


def zero_fn(x):
    return sp.Integer(0)


def one_fn(x):
    return sp.Integer(1)


# (name, alpha(.), closed-form f(.), try sympy integration of f?)
SCALAR_SDES = [
    ("vp-linear", vp_alpha, vp_f, True),
    ("vp-cosine", cos_alpha, cos_f, False),   # int tan is log|cos|; checked via ODE
    ("sub-vp", vp_alpha, vp_f, True),         # same drift / alpha as vp-linear
    ("ve", one_fn, zero_fn, True),            # alpha = 1 (sigma grows, mean fixed)
    ("edm", one_fn, zero_fn, True),
    ("blurring (freq lam)", blur_alpha, blur_f, True),
]

for name, alpha, f, integrate in SCALAR_SDES:
    Psi = alpha(t) / alpha(s)
    check(is_zero(sp.diff(Psi, t) - f(t) * Psi), f"{name}: d/dt Psi(t,s) = f(t) Psi(t,s)")
    check(is_zero(Psi.subs(t, s) - 1), f"{name}: Psi(s,s) = 1")
    semigroup = Psi * (alpha(s) / alpha(r)) - alpha(t) / alpha(r)
    check(is_zero(semigroup), f"{name}: Psi(t,s) Psi(s,r) = Psi(t,r)")
    check(is_zero(sp.diff(Psi, s) + Psi * f(s)), f"{name}: d/ds Psi(t,s) = -Psi(t,s) f(s)")
    if integrate:
        int_f = sp.integrate(f(q), (q, s, t))
        log_psi = sp.expand_log(sp.log(Psi), force=True)   # alpha > 0 on the domain
        check(is_zero(log_psi - int_f), f"{name}: log Psi(t,s) = int_s^t f (sympy integral)")
    else:
        # f = d log alpha/dt on the domain; exp(int f) = alpha_t/alpha_s follows from ODE
        check(is_zero(f(t) - sp.diff(sp.log(alpha(t)), t)),
              f"{name}: f = d log(alpha)/dt, so Psi(t,s) = exp(int_s^t f)")

# ------------------------------------------------------------------- CLD ----
beta, Gamma = sp.symbols("beta Gamma", positive=True)
M = Gamma**2 / 4                                       # critical damping
F = beta * sp.Matrix([[0, 1 / M], [-1, -Gamma / M]])


def cld_psi0(tau):
    """Psi(tau, 0) = e^{-2B/Gamma} [[1+2B/Gamma, 4B/Gamma^2], [-B, 1-2B/Gamma]], B = beta tau."""
    Bt = beta * tau
    return sp.exp(-2 * Bt / Gamma) * sp.Matrix(
        [[1 + 2 * Bt / Gamma, 4 * Bt / Gamma**2], [-Bt, 1 - 2 * Bt / Gamma]])


def cld_psi(t1, t0):
    return cld_psi0(t1 - t0)                           # constant coefficients


P = cld_psi(t, s)
check(is_zero(P.diff(t) - F * P), "cld: d/dt Psi(t,s) = F Psi(t,s) with Psi(t,s) = Psi(t-s,0)")
check(is_zero(cld_psi(s, s) - sp.eye(2)), "cld: Psi(s,s) = I")
check(is_zero(cld_psi(t, s) * cld_psi(s, r) - cld_psi(t, r)),
      "cld: Psi(t,s) Psi(s,r) = Psi(t,r)")
check(is_zero(P.diff(s) + P * F), "cld: d/ds Psi(t,s) = -Psi(t,s) F")
# Cross-check against the matrix exponential (F is a defective 2x2 Jordan block).
check(is_zero(sp.simplify((F * t).exp()) - cld_psi0(t)), "cld: Psi(t,0) = expm(F t)")
check(is_zero(P.det() - sp.exp(F.trace() * (t - s))),
      "cld: det Psi(t,s) = exp(tr F (t-s)) (Liouville)")

print("transition_matrices: all checks passed")
