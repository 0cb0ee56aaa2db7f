#!/usr/bin/python3
"""Blurring diffusion, exact Gaussian probability-flow map, 2x2 rotation-angle form.

(a) Blurring diffusion per DCT frequency (Laplacian eigenvalue lam >= 0):
      alpha_i = a(t) exp(-lam tau(t)), sigma_i = sig(t)  (a, sig: vp-linear),
      tau(t) = sB^2 sin^2(pi t/2)/2,  tau' = sB^2 pi sin(pi t)/4,
      f_i = -beta/2 - lam tau',  g_i^2 = beta + 2 lam tau' sig^2.
(b) Gaussian data N(mu, s0): C_t = alpha_t^2 s0 + sigma_t^2 and the flow
      x_t = alpha_t mu + sqrt(C_t/C_s) (x_s - alpha_s mu)
    solves the PF-ODE dx/dt = f x - g^2/2 * score, score = -(x - alpha_t mu)/C_t.
(c) R = L Rot(theta), L = chol(C), R' = A R  =>  theta' = -(L^{-1} A L)_{01}.
Run with /usr/bin/python3 (sympy + mpmath).  Exits 1 on any failure.
"""
import random
import sys

import mpmath as mp
import sympy as sp
from checks import check, is_zero  # noqa: E402  (same folder)

mp.mp.dps = 50
RNG = random.Random(7)






t = sp.Symbol("t", nonnegative=True)
b0, b1, sB = sp.symbols("b0 b1 sigma_B", positive=True)
lam = sp.Symbol("lam", nonnegative=True)

# ------------------------------------------------- (a) blurring diffusion ----
beta = b0 + (b1 - b0) * t
a = sp.exp(-t**2 * (b1 - b0) / 4 - t * b0 / 2)          # vp-linear alpha
sig = sp.sqrt(1 - a**2)                                  # vp-linear sigma
tau = sB**2 * sp.sin(sp.pi * t / 2)**2 / 2
dtau = sB**2 * sp.pi * sp.sin(sp.pi * t) / 4
alpha_i, sigma_i = a * sp.exp(-lam * tau), sig
f_i = -beta / 2 - lam * dtau
g2_i = beta + 2 * lam * dtau * sig**2

check(is_zero(sp.diff(tau, t) - dtau), "blur: tau' = sB^2 pi sin(pi t)/4")
check(is_zero(f_i - sp.diff(sp.log(alpha_i), t)), "blur: f_i = d log(alpha_i)/dt")
check(is_zero(g2_i - (sp.diff(sigma_i**2, t) - 2 * f_i * sigma_i**2)),
      "blur: g_i^2 = d(sigma_i^2)/dt - 2 f_i sigma_i^2")
S = sigma_i**2
check(is_zero(sp.diff(S, t) - (2 * f_i * S + g2_i)) and is_zero(S.subs(t, 0)),
      "blur: Sigma_i = sigma_i^2 solves dS/dt = 2 f_i S + g_i^2, S(0) = 0")
check(is_zero((f_i - (-beta / 2)).subs(lam, 0)) and is_zero((g2_i - beta).subs(lam, 0)),
      "blur: lam = 0 (DC component) reduces to vp-linear")
g2_vals = [sp.N(g2_i.subs({b0: sp.Rational(1, 10), b1: 20, sB: 3, lam: RNG.randint(0, 50),
                           t: sp.Rational(RNG.randint(1, 999), 1000)}), 30) for _ in range(6)]
check(all(v > 0 for v in g2_vals), "blur: g_i^2 > 0 at 6 random points (t in (0,1))")

# ------------------------------------------- (b) exact probability flow ----
s, mu, s0, xs = sp.symbols("s mu s0 x_s", real=True)
alpha_f, sigma_f = sp.Function("alpha"), sp.Function("sigma")
f = sp.diff(alpha_f(t), t) / alpha_f(t)                  # f = alpha'/alpha
g2 = sp.diff(sigma_f(t)**2, t) - 2 * f * sigma_f(t)**2   # g^2 = (sigma^2)' - 2 f sigma^2


def C(x):
    return alpha_f(x)**2 * s0 + sigma_f(x)**2


x_t = alpha_f(t) * mu + sp.sqrt(C(t) / C(s)) * (xs - alpha_f(s) * mu)
score = -(x_t - alpha_f(t) * mu) / C(t)
pf_residual = sp.diff(x_t, t) - (f * x_t - g2 / 2 * score)
check(is_zero(pf_residual),
      "flow: x_t = alpha_t mu + sqrt(C_t/C_s)(x_s - alpha_s mu) solves dx/dt = f x - g^2/2 score")
check(is_zero(x_t.subs(t, s) - xs), "flow: x_t at t = s equals x_s")
check(is_zero(sp.diff(C(t), t) - (2 * f * C(t) + g2)),
      "flow: C_t = alpha_t^2 s0 + sigma_t^2 solves dC/dt = 2 f C + g^2 (true marginal)")

# Public check (matrix version, vp-linear b0 = 0.1, b1 = 20).
B0, B1 = mp.mpf("0.1"), mp.mpf(20)


def vp_alpha_sigma(tt):
    al = mp.exp(-tt**2 * (B1 - B0) / 4 - tt * B0 / 2)
    return al, mp.sqrt(1 - al**2)


S0 = mp.matrix([[1, mp.mpf("0.8")], [mp.mpf("0.8"), mp.mpf("0.9")]])
mu_v = mp.matrix([mp.mpf("0.5"), -1])
evals, evecs = mp.eigsy(S0)                               # S0 = V diag(evals) V^T


def flow_map(x_from, t_from, t_to):
    """alpha_t mu + C_t^{1/2} C_s^{-1/2} (x_s - alpha_s mu); all C_t share V."""
    a_s, s_s = vp_alpha_sigma(t_from)
    a_t, s_t = vp_alpha_sigma(t_to)
    gain = mp.diag([mp.sqrt((a_t**2 * e + s_t**2) / (a_s**2 * e + s_s**2)) for e in evals])
    return a_t * mu_v + evecs * gain * evecs.T * (x_from - a_s * mu_v)


def pf_rhs(tt, x):
    """Matrix PF-ODE: dx/dt = f x + g^2/2 C_t^{-1} (x - alpha_t mu), vp-linear."""
    bt = B0 + (B1 - B0) * tt
    al, sg = vp_alpha_sigma(tt)
    Ct = al**2 * S0 + sg**2 * mp.eye(2)
    return -bt / 2 * x + bt / 2 * mp.inverse(Ct) * (x - al * mu_v)


def rk4(x0, t0, t1, n_steps):
    """Classical RK4 for the matrix PF-ODE (independent of the closed form)."""
    h, x, tt = (t1 - t0) / n_steps, x0.copy(), t0
    for _ in range(n_steps):
        k1 = pf_rhs(tt, x)
        k2 = pf_rhs(tt + h / 2, x + h / 2 * k1)
        k3 = pf_rhs(tt + h / 2, x + h / 2 * k2)
        k4 = pf_rhs(tt + h, x + h * k3)
        x, tt = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), tt + h
    return x


a1, _ = vp_alpha_sigma(mp.mpf(1))
x1 = a1 * mu_v + mp.matrix([mp.mpf("0.3"), mp.mpf("-1.1")])
x005 = flow_map(x1, mp.mpf(1), mp.mpf("0.05"))
print(f"    x(0.05) = ({mp.nstr(x005[0], 25)}, {mp.nstr(x005[1], 25)})  [closed form]")

# Independent cross-check: RK4 with 2000 and 4000 steps + Richardson extrapolation.
mp.mp.dps = 30
x_a, x_b = rk4(x1, mp.mpf(1), mp.mpf("0.05"), 2000), rk4(x1, mp.mpf(1), mp.mpf("0.05"), 4000)
x_rich = x_b + (x_b - x_a) / 15
mp.mp.dps = 50
print(f"    x(0.05) = ({mp.nstr(x_rich[0], 20)}, {mp.nstr(x_rich[1], 20)})  [RK4 + Richardson]")
rk_err = max(abs(x_rich[i] - x005[i]) for i in range(2))
check(rk_err < mp.mpf("1e-15"), "flow: closed-form matrix map = RK4/Richardson solution "
      f"of the matrix PF-ODE, |diff| = {mp.nstr(rk_err, 3)}")

# Corrected reference (closed form; confirmed by RK4 above and by a float64 evaluation).
corrected = [mp.mpf("0.2675134570517571412126377"), mp.mpf("-1.772215162899080256811326")]
err_c = max(abs(x005[i] - corrected[i]) for i in range(2))
check(err_c < mp.mpf("1e-15"), "flow: x(0.05) = (0.2675134570517571412126377, "
      f"-1.772215162899080256811326), |diff| = {mp.nstr(err_c, 3)}")

# Public check value from the spec: it agrees only to ~3e-13, not 1e-15 (it looks
# like the output of a numerical integrator rather than of the exact map).
public = [mp.mpf("0.26751345705187957"), mp.mpf("-1.7722151628994074")]
err_p = max(abs(x005[i] - public[i]) for i in range(2))
if err_p < mp.mpf("1e-15"):
    check(True, f"flow: public check x(0.05) matches to 1e-15 ({mp.nstr(err_p, 3)})")
else:
    print("!!! WARNING: public check value x(0.05) = (0.26751345705187957, "
          "-1.7722151628994074) DISAGREES with the exact flow map by "
          f"{mp.nstr(err_p, 3)} > 1e-15.\n!!! Correct value: "
          f"({mp.nstr(x005[0], 17)}, {mp.nstr(x005[1], 17)})")
    check(err_p < mp.mpf("1e-12"), "flow: public check value agrees only loosely "
          f"(|diff| = {mp.nstr(err_p, 3)} < 1e-12) -- see WARNING above")

# ------------------------------------------------ (c) rotation-angle form ----
l00, l10, l11, th = (sp.Function(n)(t) for n in ("l00", "l10", "l11", "theta"))
A = sp.Matrix(2, 2, sp.symbols("a00 a01 a10 a11", real=True))
L = sp.Matrix([[l00, 0], [l10, l11]])                     # lower triangular, Cholesky
Rot = sp.Matrix([[sp.cos(th), -sp.sin(th)], [sp.sin(th), sp.cos(th)]])
J = sp.Matrix([[0, -1], [1, 0]])
R = L * Rot
Linv = L.inv()
LAL = Linv * A * L
dth = sp.diff(th, t)

# R' - A R = L (L^{-1} L' + theta' J - L^{-1} A L) Rot, since Rot' Rot^T = theta' J.
E = Linv * (sp.diff(R, t) - A * R) * Rot.T
check(is_zero(E - (Linv * sp.diff(L, t) + dth * J - LAL)),
      "rot: L^{-1}(R' - A R) Rot^T = L^{-1} L' + theta' J - L^{-1} A L")
check(is_zero((Linv * sp.diff(L, t))[0, 1]), "rot: L^{-1} L' is lower triangular ((0,1) entry = 0)")
check(is_zero(E[0, 1] - (-dth - LAL[0, 1])),
      "rot: (0,1) entry gives R' = A R  =>  theta' = -(L^{-1} A L)_{01}")
check(is_zero(LAL[0, 1] - A[0, 1] * l11 / l00),
      "rot: explicitly theta' = -a01 * L11 / L00")
# Converse: L' = L N with N = [[M00, 0], [M10 + M01, M11]] (M = L^{-1} A L) and
# theta' = -M01 make R = L Rot(theta) solve R' = A R.
N = sp.Matrix([[LAL[0, 0], 0], [LAL[1, 0] + LAL[0, 1], LAL[1, 1]]])
Lp = L * N                                                # L' (lower triangular)
derivs = {sp.diff(l00, t): Lp[0, 0], sp.diff(l10, t): Lp[1, 0], sp.diff(l11, t): Lp[1, 1],
          dth: -LAL[0, 1]}
check(Lp[0, 1] == 0, "rot: L' = L N, N = [[M00, 0], [M10+M01, M11]], keeps L lower triangular")
check(is_zero(sp.diff(R, t).subs(derivs) - A * R),
      "rot: L' = L N with theta' = -M01 makes R = L Rot(theta) solve R' = A R")
# L L^T stays equal to C: d(L L^T) = L (N + N^T) L^T = A C + C A^T, and with
# A = F + D C^{-1} (D = G G^T/2) this is the Lyapunov ODE F C + C F^T + G G^T.
Cm = L * L.T
check(is_zero(L * (N + N.T) * L.T - (A * Cm + Cm * A.T)),
      "rot: L (N + N^T) L^T = A C + C A^T, so L L^T = C is preserved")
Fm = sp.Matrix(2, 2, sp.symbols("F00 F01 F10 F11", real=True))
d00, d01, d11 = sp.symbols("d00 d01 d11", real=True)
Dm = sp.Matrix([[d00, d01], [d01, d11]])
Am = Fm + Dm * Cm.inv()
check(is_zero(Am * Cm + Cm * Am.T - (Fm * Cm + Cm * Fm.T + 2 * Dm)),
      "rot: A = F + D C^{-1} gives A C + C A^T = F C + C F^T + G G^T (Lyapunov)")
print("    result: theta'(t) = -(L^{-1} A L)_{01} = -A_{01} L_{11} / L_{00}")

print("blurring_and_flow: all checks passed")
