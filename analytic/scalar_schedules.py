#!/usr/bin/python3
"""Symbolic verification of the scalar forward SDEs dx = f(t) x dt + g(t) dw.

Identities (all checked per SDE):
    alpha_t = exp(int_0^t f)          <=>  f = d log(alpha_t) / dt
    sigma_t^2 = alpha_t^2 (sigma_0^2/alpha_0^2 + int_0^t g^2/alpha^2)
                                      <=>  g^2 = d(sigma^2)/dt - 2 f sigma^2
    lambda_t = log(alpha_t / sigma_t) (half log-SNR), d lambda/dt < 0,
    and the closed-form inverse t(lambda).
SDEs: vp-linear, vp-cosine, sub-vp, ve, edm.  Run with /usr/bin/python3.
"""
import random
import sys

import mpmath as mp
import sympy as sp
from checks import check  # noqa: E402  (same folder)

mp.mp.dps = 50
RNG = random.Random(20240607)
N_POINTS = 6
TOL = mp.mpf("1e-40")




def rat(lo, hi):
    """Random rational in [lo, hi] with 4 decimals."""
    return sp.Rational(RNG.randint(round(lo * 10**4), round(hi * 10**4)), 10**4)


def mp_eval(expr, point):
    """Evaluate expr at an exact rational point with 50-digit mpmath."""
    syms = sorted(point, key=str)
    fn = sp.lambdify(syms, expr, modules="mpmath")
    return fn(*[mp.mpf(point[x].p) / point[x].q for x in syms])


def numeric_zero(expr, label, sampler):
    """|expr| < 1e-40 at N_POINTS random rational points (50 digits)."""
    worst = max(abs(mp_eval(expr, sampler())) for _ in range(N_POINTS))
    check(worst < TOL, f"{label} [numeric, {N_POINTS} random points, "
          f"max|diff| = {mp.nstr(worst, 3)}]")


def sqrt_factor(e):
    """Factor radicands so that sqrt(p^2) -> p for positive p."""
    return e.replace(lambda x: x.is_Pow and x.exp == sp.S.Half,
                     lambda x: sp.sqrt(sp.factor(x.base)))


def zero(expr, label, sampler=None, tactics=(sp.simplify,)):
    """Prefer a symbolic zero; otherwise fall back to the numeric test."""
    for tactic in tactics:
        if tactic(expr) == 0:
            check(True, f"{label} [symbolic]")
            return
    if sampler is None:
        check(False, f"{label}: does not simplify to 0 (no numeric fallback for this check)")
    note = ("composite of the symbolically proven steps above" if not tactics
            else "no symbolic zero found")
    numeric_zero(expr, f"{label} ({note})", sampler)


# ---------------------------------------------------------------- symbols ----
t = sp.Symbol("t", positive=True)
lam = sp.Symbol("lambda", real=True)
Lsym = sp.Symbol("L", positive=True)          # L = -log(alpha) >= 0
b0, b1, s, s_min, s_max = sp.symbols("b0 b1 s s_min s_max", positive=True)
d = sp.Symbol("d", positive=True)             # b1 = b0 + d  (beta_max > beta_min)


def vp_alpha(tt):
    return sp.exp(-tt**2 * (b1 - b0) / 4 - tt * b0 / 2)


def vp_beta(tt):
    return b0 + (b1 - b0) * tt


def L_of_t(tt):
    """-log alpha for the linear beta schedule (quadratic in t)."""
    return tt**2 * (b1 - b0) / 4 + tt * b0 / 2


def t_of_L(L):
    """Positive root of L_of_t(t) = L, written without cancellation."""
    return 2 * L / (b0 / 2 + sp.sqrt(b0**2 / 4 + (b1 - b0) * L))


def check_t_L_inverse(tag):
    """t <-> L = -log alpha (shared by vp-linear and sub-vp)."""
    zero(L_of_t(t_of_L(Lsym)) - Lsym, f"{tag}: L(t(L)) = L")
    expr = (t_of_L(L_of_t(t)) - t).subs(b1, b0 + d)
    zero(expr, f"{tag}: t(L(t)) = t  (beta_max > beta_min)",
         tactics=(lambda e: sp.simplify(sqrt_factor(e)),))


def vp_sampler():
    return {b0: rat(0.01, 1), b1: rat(5, 30), t: rat(0.01, 1), lam: rat(-6, 6)}


def cos_sampler():
    return {s: rat(0.001, 0.1), t: rat(0.01, 0.99), lam: rat(-6, 6)}


def ve_sampler():
    return {s_min: rat(0.001, 0.1), s_max: rat(10, 100), t: rat(0, 1), lam: rat(-4, 6)}


def edm_sampler():
    return {t: rat(0.002, 80), lam: rat(-4, 6)}


def common_checks(tag, alpha, sigma, f, g2, alpha0, sigma0, lam_t, t_lam, sampler,
                  t_inv_tactics=(sp.simplify,), lam_inv_tactics=(sp.simplify,)):
    """All per-SDE identities; lam_t / t_lam are the stated closed forms."""
    zero(f - sp.diff(sp.log(alpha), t), f"{tag}: f = d log(alpha)/dt")
    zero(g2 - (sp.diff(sigma**2, t) - 2 * f * sigma**2),
         f"{tag}: g^2 = d(sigma^2)/dt - 2 f sigma^2")
    # sigma^2/alpha^2 = sigma_0^2/alpha_0^2 + int_0^t g^2/alpha^2 via FTC:
    zero(sp.diff(sigma**2 / alpha**2, t) - g2 / alpha**2,
         f"{tag}: d(sigma^2/alpha^2)/dt = g^2/alpha^2 (integral form of sigma_t^2)")
    check(sp.simplify(alpha.subs(t, 0) - alpha0) == 0
          and sp.simplify(sigma.subs(t, 0) - sigma0) == 0,
          f"{tag}: alpha_0 = {alpha0}, sigma_0 = {sigma0}")
    g2_vals = [mp_eval(g2, sampler()) for _ in range(N_POINTS)]
    check(all(v > 0 for v in g2_vals), f"{tag}: g^2 > 0 at {N_POINTS} random points")
    zero(lam_t - sp.log(alpha / sigma), f"{tag}: lambda_t = log(alpha_t/sigma_t)")
    dlam = sp.diff(lam_t, t)
    dl_vals = [mp_eval(dlam, sampler()) for _ in range(N_POINTS)]
    check(all(v < 0 for v in dl_vals),
          f"{tag}: d lambda/dt < 0 at {N_POINTS} random points "
          f"(max {mp.nstr(max(dl_vals), 3)})")
    # inverse of the full closed forms: symbolic if possible, else numeric
    # (an empty tactics tuple means: proven stepwise above, numeric on the composite)
    zero(lam_t.subs(t, t_lam) - lam, f"{tag}: lambda(t(lambda)) = lambda (full closed form)",
         sampler, lam_inv_tactics)
    zero(t_lam.subs(lam, lam_t) - t, f"{tag}: t(lambda(t)) = t (full closed form)",
         sampler, t_inv_tactics)


# -------------------------------------------------------------- vp-linear ----
alpha = vp_alpha(t)
sigma = sp.sqrt(1 - alpha**2)
L_lam = sp.log(1 + sp.exp(-2 * lam)) / 2                  # = -log alpha(lambda)
check_t_L_inverse("vp-linear")
zero(sp.log(sp.exp(-L_lam) / sp.sqrt(1 - sp.exp(-2 * L_lam))) - lam,
     "vp-linear: lambda(L(lambda)) = lambda with L = log(1 + e^{-2 lambda})/2")
common_checks("vp-linear", alpha, sigma, -vp_beta(t) / 2, vp_beta(t), 1, 0,
              sp.log(alpha / sigma), t_of_L(L_lam), vp_sampler,
              t_inv_tactics=(), lam_inv_tactics=())   # composites: numeric only

# -------------------------------------------------------------- vp-cosine ----
phi = sp.pi / 2 * (t + s) / (1 + s)                      # angle, in [phi_0, pi/2)
phi0 = sp.pi * s / (2 * (1 + s))
alpha = sp.cos(phi) / sp.cos(phi0)
sigma = sp.sqrt(1 - alpha**2)
f_cos = -sp.pi / (2 * (1 + s)) * sp.tan(phi)              # closed form of d log alpha/dt
alpha_lam = 1 / sp.sqrt(1 + sp.exp(-2 * lam))
t_lam = (1 + s) * (2 / sp.pi) * sp.acos(alpha_lam * sp.cos(phi0)) - s


def on_cosine_domain(e):
    """0 < alpha_t <= 1 and phi in [0, pi] on t in [0, 1): drop Abs, acos(cos)."""
    e = sp.simplify(e).replace(sp.Abs, lambda x: x)
    e = e.replace(lambda x: isinstance(x, sp.acos) and isinstance(x.args[0], sp.cos),
                  lambda x: x.args[0].args[0])
    return sp.simplify(e)


common_checks("vp-cosine", alpha, sigma, f_cos, -2 * f_cos, 1, 0,
              sp.log(alpha / sigma), t_lam, cos_sampler,
              t_inv_tactics=(sp.simplify, on_cosine_domain))

# ----------------------------------------------------------------- sub-vp ----
alpha = vp_alpha(t)
B = b0 * t + (b1 - b0) * t**2 / 2
sigma = 1 - alpha**2
zero(alpha**2 - sp.exp(-B), "sub-vp: alpha_t^2 = e^{-B(t)}, B = b0 t + (b1-b0) t^2/2")
zero(sp.diff(B, t) - vp_beta(t), "sub-vp: dB/dt = beta(t)")
g2_sub = vp_beta(t) * (1 - sp.exp(-2 * B))
r_lam = sp.exp(lam)
a_lam = 2 * r_lam / (1 + sp.sqrt(1 + 4 * r_lam**2))
# stepwise symbolic inverse: alpha <-> lambda (alpha = 1/(1+k) in (0,1)), t <-> L
k = sp.Symbol("k", positive=True)
a_k = 1 / (1 + k)
zero(sp.log(a_lam / (1 - a_lam**2)) - lam, "sub-vp: lambda(alpha(lambda)) = lambda")
zero(a_lam.subs(lam, sp.log(a_k / (1 - a_k**2))) - a_k,
     "sub-vp: alpha(lambda(alpha)) = alpha for 0 < alpha < 1",
     tactics=(lambda e: sp.simplify(sqrt_factor(sp.simplify(e))),))
check_t_L_inverse("sub-vp")
common_checks("sub-vp", alpha, sigma, -vp_beta(t) / 2, g2_sub, 1, 0,
              sp.log(alpha / sigma), t_of_L(-sp.log(a_lam)), vp_sampler,
              t_inv_tactics=(), lam_inv_tactics=())   # composites: numeric only
# Van Loan-style split: VL(a, B) = int_0^B e^{2a(B-r)} dr
Bs, rr = sp.symbols("B r", positive=True)


def van_loan(a):
    return sp.integrate(sp.exp(2 * a * (Bs - rr)), (rr, 0, Bs))


zero((1 - sp.exp(-Bs))**2 - (van_loan(-sp.S.Half) - sp.exp(-2 * Bs) * van_loan(sp.S.Half)),
     "sub-vp: (1 - e^{-B})^2 = VL(-1/2, B) - e^{-2B} VL(+1/2, B)")
zero(sigma**2 - (1 - sp.exp(-B))**2, "sub-vp: sigma_t^2 = (1 - e^{-B(t)})^2")

# --------------------------------------------------------------------- ve ----
sigma = s_min * (s_max / s_min)**t
common_checks("ve", sp.Integer(1), sigma, sp.Integer(0), sp.diff(sigma**2, t), 1, s_min,
              -sp.log(sigma), sp.log(sp.exp(-lam) / s_min) / sp.log(s_max / s_min),
              ve_sampler,
              t_inv_tactics=(lambda e: sp.simplify(sp.expand_log(e, force=True)),),
              lam_inv_tactics=(lambda e: sp.simplify(sp.expand_log(e, force=True)),))

# -------------------------------------------------------------------- edm ----
common_checks("edm", sp.Integer(1), t, sp.Integer(0), 2 * t, 1, 0,
              -sp.log(t), sp.exp(-lam), edm_sampler)

print("scalar_schedules: all checks passed")
