#!/usr/bin/python3
"""The data-aware paDDIM step (lib/pflow/sampler/matrix.hpp), per principal axis of the data.

Scalar SDE with alpha(t), sigma(t): f = alpha'/alpha, g^2 = (sigma^2)' - 2 f sigma^2,
lambda = log(alpha/sigma).  On an axis with data variance s and mean mu, the Gaussian model has
C = alpha^2 s + sigma^2, v = sqrt(C), score_g = -(x - alpha mu)/C.  The PF-ODE with the true
score = score_g + r reads dx/dt = f x - g^2/2 score.  Checks:
  1. d lambda/dt = -g^2 / (2 sigma^2);
  2. w = (x - alpha mu)/v satisfies dw/dt = -(g^2/2) r / v  (the Gaussian part drops out);
  3. with Tweedie x0_hat = (x + sigma^2 score)/alpha and x0_g its Gaussian part,
     -(g^2/2) r / v dt = (alpha/v) (x0_hat - x0_g) dlambda;
  4. alpha/v = e^lambda / sqrt(1 + s e^{2 lambda}) = d/dlambda [asinh(sqrt(s) e^lambda)/sqrt(s)],
     and the s -> 0 limit of the primitive is e^lambda (DDIM).
"""
import sympy as sp
from checks import check, is_zero

t, s, mu, lam = sp.symbols("t s mu lambda", positive=True)
x, r = sp.symbols("x r", real=True)
alpha = sp.Function("alpha", positive=True)(t)
sigma = sp.Function("sigma", positive=True)(t)

f = sp.diff(alpha, t) / alpha
g2 = sp.diff(sigma**2, t) - 2 * f * sigma**2
lam_t = sp.log(alpha / sigma)
check(is_zero(sp.diff(lam_t, t) + g2 / (2 * sigma**2)), "d lambda/dt = -g^2/(2 sigma^2)")

C = alpha**2 * s + sigma**2
v = sp.sqrt(C)
score = -(x - alpha * mu) / C + r
dxdt = f * x - g2 / 2 * score
w = (x - alpha * mu) / v
dwdt = sp.diff(w, t) + sp.diff(w, x) * dxdt  # total derivative along the flow
check(is_zero(sp.simplify(dwdt + g2 / 2 * r / v)), "dw/dt = -(g^2/2) r / v")

x0_hat = (x + sigma**2 * score) / alpha
x0_gauss = (x - sigma**2 * (x - alpha * mu) / C) / alpha
dlam = -g2 / (2 * sigma**2)  # d lambda / dt
check(is_zero(sp.simplify(-g2 / 2 * r / v - alpha / v * (x0_hat - x0_gauss) * dlam)),
      "-(g^2/2) r/v dt = (alpha/v)(x0_hat - x0_gauss) dlambda")
check(is_zero(sp.simplify(x0_gauss - (alpha * s * x + sigma**2 * mu) / C)),
      "x0_gauss = (alpha s x + sigma^2 mu)/(alpha^2 s + sigma^2)")

# 4. In lambda: alpha/v = 1/sqrt(s + e^{-2 lambda}).
a_over_v = 1 / sp.sqrt(s + sp.exp(-2 * lam))
primitive = sp.asinh(sp.sqrt(s) * sp.exp(lam)) / sp.sqrt(s)
check(is_zero(sp.simplify(sp.diff(primitive, lam) - a_over_v)),
      "d/dlambda asinh(sqrt(s) e^lambda)/sqrt(s) = alpha/v")
check(is_zero(sp.limit(primitive, s, 0) - sp.exp(lam)), "s -> 0: the primitive is e^lambda (DDIM)")
alpha_l, sigma_l = sp.symbols("alpha_l sigma_l", positive=True)
check(is_zero(sp.simplify((alpha_l / sp.sqrt(alpha_l**2 * s + sigma_l**2)).subs(
    sigma_l, alpha_l * sp.exp(-lam)) - a_over_v)), "alpha/v with sigma = alpha e^{-lambda}")
