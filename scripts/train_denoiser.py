#!/usr/bin/python3
"""Trains a small MLP denoiser with PyTorch and writes it in pflow's model format, version 1.

Usage: /usr/bin/python3 scripts/train_denoiser.py CONFIG.json --out MODEL.h5 [--quiet]
(Debian's interpreter: it has torch, numpy and h5py; scripts/setup installs them.)

CONFIG holds the experiment schema's `sde` and `target` blocks (any pflow SDE: scalar, cld,
linear, blurring; a Gaussian, Dirac or mixture target, or a sample-only `dataset`), a `model` block and a `training` block
(README, "Learned denoisers"). The same config on the same machine with the same torch and numpy
versions gives bit-identical weights: every random draw comes from seeded generators and torch
runs on one thread with deterministic algorithms.

The loss is the denoising objective of the chosen output, a plain mean square over the batch and
the coordinates (README, "Learned denoisers", and docs/NOTES.md sec. 10):
  eps:   |eps_hat - eps|^2                        (Ho et al. 2020, L_simple)
  x0:    |x0_hat - x0|^2
  v:     |v_hat - v|^2, v = alpha eps - sigma x0  (Salimans & Ho 2022)
  score: |sigma s_hat + eps|^2 = sigma^2 |s_hat - (-eps / sigma)|^2 (denoising score matching
         with the weight lambda(t) = sigma^2, Song et al. 2021)
  velocity: |u_hat - u|^2, u = d alpha/dt x0 + d sigma/dt eps (conditional flow matching,
         Lipman et al. 2022; on rectified flow u = eps - x0, Liu et al. 2022)
with x_t = alpha_t x0 + sigma_t eps, eps ~ N(0, I).

A class-conditional model ("model": {"conditional": true}, a gmm target with "labels") takes the
one-hot vector of its sample's class label as C more inputs after the time embedding (C = the
largest label + 1). With probability training.label_dropout [0.1] the vector is all zeros
instead, so the one network also learns the unconditional score: the pair that classifier-free
guidance combines (Ho & Salimans 2022). The file records C in the optional `classes` attribute
of format 1; files without it are unconditional, as before. Under the matrix SDEs (cld, state
u = (x, v); linear; blurring; score output only, time input t) x_t = Psi(t, 0) lift(x0) + L_t z
with L L^T = Sigma(t) (lift(x0) = (x0, 0) under CLD, whose Sigma includes the velocity prior),
and the loss is |L^T s_hat + z|^2, the same weighting with the matrix L in place of sigma.
"""
import argparse
import copy
import json
import math
import os
import sys
import time

import h5py
import numpy as np
import torch

FORMAT = "pflow-denoiser"
FORMAT_VERSION = 1
ACTIVATIONS = ("silu", "gelu", "tanh", "softplus", "relu")
OUTPUTS = ("eps", "x0", "v", "score", "velocity")
TIME_INPUTS = ("t", "lambda")
T_DRAWS = ("uniform", "lambda-uniform")
LR_SCHEDULES = ("constant", "cosine")


class ConfigError(Exception):
    """Bad input: names the field and the value (exit status 2, as pflow's own)."""

    def __init__(self, field, value, reason):
        super().__init__(f"{field} = {json.dumps(value)}: {reason}")


def field(block, path, name, default=None, kind=None, choices=None, positive=False):
    """block[name] (or the default), type- and range-checked; errors name path.name."""
    at = f"{path}.{name}"
    if name not in block:
        if default is None:
            raise ConfigError(at, None, "is required")
        return default
    value = block[name]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(at, value, "must be an integer")
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(at, value, "must be a number")
    if kind is float:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(at, value, "must be finite")
    if kind is str and not isinstance(value, str):
        raise ConfigError(at, value, "must be a string")
    if choices is not None and value not in choices:
        raise ConfigError(at, value, "must be one of " + ", ".join(choices))
    if positive and value <= 0:
        raise ConfigError(at, value, "must be positive")
    return value


def check_keys(block, path, allowed):
    if not isinstance(block, dict):
        raise ConfigError(path, block, "must be a JSON object")
    for key in block:
        if key not in allowed:
            raise ConfigError(f"{path}.{key}", block[key],
                              "unknown field; valid fields: " + ", ".join(allowed))


# ---------------------------------------------------------------------------------------------
# Scalar SDEs: x_t = alpha_t x0 + sigma_t eps, the closed forms of lib/pflow/sde/scalar_sdes.hpp
# (docs/NOTES.md sec. 1). The test train_denoiser_matches_pflow compares them with pflow's.

class ScalarSde:
    def __init__(self, block):
        kind = field(block, "sde", "type", kind=str,
                     choices=("vp-linear", "sub-vp", "vp-cosine", "ve", "edm", "rectified-flow"))
        self.kind = kind
        if kind == "rectified-flow":
            check_keys(block, "sde", ("type",))
        elif kind in ("vp-linear", "sub-vp"):
            check_keys(block, "sde", ("type", "beta_min", "beta_max"))
            self.b0 = field(block, "sde", "beta_min", 0.1, float, positive=True)
            self.b1 = field(block, "sde", "beta_max", 20.0, float, positive=True)
        elif kind == "vp-cosine":
            check_keys(block, "sde", ("type", "s"))
            self.s = field(block, "sde", "s", 0.008, float, positive=True)
        else:
            check_keys(block, "sde", ("type", "sigma_min", "sigma_max"))
            ve = kind == "ve"
            self.lo = field(block, "sde", "sigma_min", 0.01 if ve else 0.002, float, positive=True)
            self.hi = field(block, "sde", "sigma_max", 50.0 if ve else 80.0, float, positive=True)

    def alpha_sigma(self, t):
        """alpha_t and sigma_t for an array of times (float64 numpy)."""
        t = np.asarray(t, dtype=np.float64)
        if self.kind in ("vp-linear", "sub-vp"):
            big_b = self.b0 * t + 0.5 * (self.b1 - self.b0) * t * t  # int_0^t beta
            alpha = np.exp(-0.5 * big_b)
            one_minus = -np.expm1(-big_b)  # 1 - alpha^2
            sigma = np.sqrt(one_minus) if self.kind == "vp-linear" else one_minus
            return alpha, sigma
        if self.kind == "vp-cosine":
            a0 = 0.5 * math.pi * self.s / (1 + self.s)
            a = 0.5 * math.pi * (t + self.s) / (1 + self.s)
            alpha = np.cos(a) / math.cos(a0)
            sigma = np.sqrt(np.sin(a - a0) * np.sin(a + a0)) / math.cos(a0)
            return alpha, sigma
        if self.kind == "ve":
            return np.ones_like(t), self.lo * (self.hi / self.lo) ** t
        if self.kind == "rectified-flow":
            return 1 - t, t.copy()
        return np.ones_like(t), t.copy()  # edm: sigma = t

    def rates(self, t):
        """d alpha/dt and d sigma/dt for an array of times: the velocity target's weights."""
        t = np.asarray(t, dtype=np.float64)
        alpha, sigma = self.alpha_sigma(t)
        if self.kind in ("vp-linear", "sub-vp"):
            dalpha = -0.5 * (self.b0 + (self.b1 - self.b0) * t) * alpha
            # vp-linear: sigma^2 = 1 - alpha^2; sub-vp: sigma = 1 - alpha^2.
            dsigma = (-alpha * dalpha / sigma if self.kind == "vp-linear"
                      else -2 * alpha * dalpha)
            return dalpha, dsigma
        if self.kind == "vp-cosine":
            a = 0.5 * math.pi * (t + self.s) / (1 + self.s)
            dalpha = -np.tan(a) * 0.5 * math.pi / (1 + self.s) * alpha
            return dalpha, -alpha * dalpha / sigma
        if self.kind == "ve":
            return np.zeros_like(t), sigma * math.log(self.hi / self.lo)
        if self.kind == "rectified-flow":
            return -np.ones_like(t), np.ones_like(t)
        return np.zeros_like(t), np.ones_like(t)  # edm

    def lam(self, t):
        alpha, sigma = self.alpha_sigma(t)
        return np.log(alpha) - np.log(sigma)

    def t_of_lambda(self, lam, t_min, t_max):
        """The inverse of the decreasing lambda(t) on [t_min, t_max], by bisection."""
        lo = np.full_like(lam, t_min)
        hi = np.full_like(lam, t_max)
        for _ in range(64):
            mid = 0.5 * (lo + hi)
            above = self.lam(mid) > lam  # lambda decreases: the root lies to the right
            lo = np.where(above, mid, lo)
            hi = np.where(above, hi, mid)
        return 0.5 * (lo + hi)


class CldSde:
    """Critically-damped Langevin diffusion as lib/pflow/sde/cld.hpp defines it: per coordinate
    the pair (x_i, v_i) (state indices i and d + i), F = beta [[0, 1/M], [-1, -Gamma/M]],
    G G^T = beta diag(0, 2 Gamma), Gamma = 2 sqrt(M), Sigma(0) = diag(0, gamma M). Psi and Sigma
    come from matrix exponentials (Van Loan's block form for the integral); the test
    train_denoiser_load_in_pflow_and_run compares them with pflow's closed forms."""

    kind = "cld"

    def __init__(self, block):
        check_keys(block, "sde", ("type", "beta", "M", "gamma"))
        self.beta = field(block, "sde", "beta", 4.0, float, positive=True)
        self.mass = field(block, "sde", "M", 0.25, float, positive=True)
        self.gamma = field(block, "sde", "gamma", 0.04, float)
        if self.gamma < 0:
            raise ConfigError("sde.gamma", self.gamma, "must be >= 0")
        damping = 2 * math.sqrt(self.mass)
        self.a = torch.tensor([[0.0, 1 / self.mass], [-1.0, -damping / self.mass]],
                              dtype=torch.float64)
        self.q = torch.tensor([[0.0, 0.0], [0.0, 2 * damping]], dtype=torch.float64)
        self.s0 = torch.tensor([[0.0, 0.0], [0.0, self.gamma * self.mass]], dtype=torch.float64)

    def kernel(self, t):
        """Psi(t, 0) and Sigma(t), each [n, 2, 2], for an array of times."""
        psi, integral = van_loan(self.beta * np.asarray(t, dtype=np.float64), self.a, self.q)
        sigma = psi @ self.s0 @ psi.transpose(1, 2) + integral
        return psi.numpy(), (0.5 * (sigma + sigma.transpose(1, 2))).numpy()

    def lam(self, t):
        raise ConfigError("model.time_input", "lambda", "needs a scalar SDE, not cld")


def matrix_exp(m):
    """exp(m) for a batch [n, D, D], as e^{-c} exp(m + c I) (I commutes with m), c = +1 or -1,
    whichever gives m + c I the larger 1-norm: at least 1, since the two differ by 2 I. torch
    1.13's own matrix_exp loses up to 3e-11 (absolute, on O(1) entries) for 1-norms between
    about 0.006 and 0.05, measured against 40-digit mpmath; at norms of 1 and above it is
    accurate to a few ulp."""
    eye = torch.eye(m.shape[-1], dtype=m.dtype)
    norm = lambda a: a.abs().sum(dim=-2).amax(dim=-1)  # noqa: E731 (1-norm per matrix)
    c = torch.where(norm(m + eye) >= norm(m - eye), 1.0, -1.0).to(m.dtype)[..., None, None]
    return torch.linalg.matrix_exp(m + c * eye) * torch.exp(-c)


def van_loan(clock, a, q):
    """Psi = exp(B A) and int_0^B e^{A s} Q e^{A^T s} ds for each clock value B [n] (Van Loan
    1978), both [n, D, D] torch float64."""
    b = torch.as_tensor(np.asarray(clock, dtype=np.float64))[:, None, None]
    dim = a.shape[0]
    psi = matrix_exp(b * a)
    block = torch.zeros(len(b), 2 * dim, 2 * dim, dtype=torch.float64)
    block[:, :dim, :dim] = -a
    block[:, :dim, dim:] = q
    block[:, dim:, dim:] = a.T
    e = matrix_exp(b * block)
    return psi, e[:, dim:, dim:].transpose(1, 2) @ e[:, :dim, dim:]


class LinearSdeGeneric:
    """The generic linear SDE of lib/pflow/sde/linear_sde.hpp: F = beta(t) Fbar,
    G G^T = beta(t) Gbar Gbar^T, beta(t) = beta_min + (beta_max - beta_min) t, initial state
    covariance Sigma0. Psi(t, 0) and Sigma(t) = Psi Sigma0 Psi^T + int come from Van Loan's block
    exponential in the clock B(t) = int_0^t beta."""

    kind = "linear"

    def __init__(self, block):
        check_keys(block, "sde", ("type", "Fbar", "Gbar", "beta_min", "beta_max", "Sigma0"))
        self.fbar = matrix(field(block, "sde", "Fbar"), "sde.Fbar")
        dim = self.fbar.shape[0]
        if self.fbar.shape[1] != dim:
            raise ConfigError("sde.Fbar", block["Fbar"], "must be square")
        gbar = matrix(field(block, "sde", "Gbar"), "sde.Gbar", rows=dim)
        self.b0 = field(block, "sde", "beta_min", 1.0, float, positive=True)
        self.b1 = field(block, "sde", "beta_max", 1.0, float, positive=True)
        self.s0 = (matrix(block["Sigma0"], "sde.Sigma0", dim, dim) if "Sigma0" in block
                   else np.zeros((dim, dim)))
        self.a = torch.tensor(self.fbar)
        self.q = torch.tensor(gbar @ gbar.T)
        self.dim = dim

    def kernel(self, t):
        t = np.asarray(t, dtype=np.float64)
        psi, integral = van_loan(self.b0 * t + 0.5 * (self.b1 - self.b0) * t * t, self.a, self.q)
        sigma = psi @ torch.tensor(self.s0) @ psi.transpose(1, 2) + integral
        return psi.numpy(), (0.5 * (sigma + sigma.transpose(1, 2))).numpy()

    def lam(self, t):
        raise ConfigError("model.time_input", "lambda", "needs a scalar SDE, not linear")


def dct_matrix(n):
    """Orthonormal DCT-II: C[k, j] = c_k cos(pi (j + 1/2) k / n)."""
    k, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    c = np.sqrt(np.where(k == 0, 1.0, 2.0) / n)
    return c * np.cos(np.pi * (2 * j + 1) * k / (2 * n))


class BlurringSde:
    """Blurring diffusion as lib/pflow/sde/blurring.hpp defines it: an image (C, H, W) flattened
    row-major; in the orthonormal 2-D DCT basis frequency (k_h, k_w) has alpha_i(t) =
    a(t) exp(-lam_i tau(t)) with lam_i = pi^2 (k_h^2 / H^2 + k_w^2 / W^2), a, s the vp-linear
    schedule and tau(t) = sB^2 sin^2(pi t / 2) / 2; the noise stays isotropic, Sigma(t) = s^2 I.
    Psi(t, 0) = U^T diag(alpha) U with U the DCT of every channel."""

    kind = "blurring"

    def __init__(self, block):
        check_keys(block, "sde", ("type", "shape", "beta_min", "beta_max", "blur_sigma_max"))
        shape = field(block, "sde", "shape")
        if (not isinstance(shape, list) or len(shape) != 3 or
                any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in shape)):
            raise ConfigError("sde.shape", shape, "must be [channels, height, width] of "
                              "positive integers")
        channels, height, width = shape
        self.b0 = field(block, "sde", "beta_min", 0.1, float, positive=True)
        self.b1 = field(block, "sde", "beta_max", 20.0, float, positive=True)
        self.blur = field(block, "sde", "blur_sigma_max", 1.0, float)
        if self.blur < 0:
            raise ConfigError("sde.blur_sigma_max", self.blur, "must be >= 0")
        self.u = np.kron(np.eye(channels), np.kron(dct_matrix(height), dct_matrix(width)))
        kh, kw = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
        lam = np.pi ** 2 * (kh ** 2 / height ** 2 + kw ** 2 / width ** 2)
        self.eigen = np.tile(lam.ravel(), channels)
        self.dim = channels * height * width

    def kernel(self, t):
        t = np.asarray(t, dtype=np.float64)
        big_b = self.b0 * t + 0.5 * (self.b1 - self.b0) * t * t
        tau = self.blur ** 2 * np.sin(np.pi * t / 2) ** 2 / 2
        alphas = np.exp(-0.5 * big_b[:, None] - self.eigen[None, :] * tau[:, None])  # [n, D]
        psi = np.einsum("ki,nk,kj->nij", self.u, alphas, self.u)
        var = -np.expm1(-big_b)
        return psi, var[:, None, None] * np.eye(self.dim)[None]

    def lam(self, t):
        raise ConfigError("model.time_input", "lambda", "needs a scalar SDE, not blurring")


# SDEs whose kernel is a matrix: networks on them output the score, with time input t.
MATRIX_SDES = ("cld", "linear", "blurring")


def make_sde(block):
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "cld":
        return CldSde(block)
    if kind == "linear":
        return LinearSdeGeneric(block)
    if kind == "blurring":
        return BlurringSde(block)
    return ScalarSde(block)


def state_dim(sde, data_dim):
    if sde.kind in ("linear", "blurring") and sde.dim != data_dim:
        raise ConfigError("target", data_dim, f"has dimension {data_dim}; the {sde.kind} SDE "
                          f"needs {sde.dim}")
    return 2 * data_dim if sde.kind == "cld" else data_dim


def perturb(sde, x0, t, z):
    """x_t (or u_t under CLD) from data x0 [n, d], times t [n] and standard normals z [n, D];
    under CLD also the factors L [n, d, 2, 2] of Sigma(t), the same for every coordinate pair;
    under linear and blurring the factors L [n, D, D] of Sigma(t)."""
    if sde.kind in ("linear", "blurring"):
        psi, cov = sde.kernel(t)
        try:
            chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ConfigError("sde", sde.kind, "has a singular kernel covariance Sigma(t) in the "
                              "training time range (noise of lower rank than the state?)")
        return np.einsum("nij,nj->ni", psi, x0) + np.einsum("nij,nj->ni", chol, z), chol
    if sde.kind != "cld":
        alpha, sigma = sde.alpha_sigma(t)
        return alpha[:, None] * x0 + sigma[:, None] * z, None
    d = x0.shape[1]
    psi, cov = sde.kernel(t)
    chol = np.linalg.cholesky(cov)  # [n, 2, 2]
    pairs = np.stack([z[:, :d], z[:, d:]], axis=2)  # [n, d, 2]: (x_i, v_i) noise
    mean = psi[:, None, :, 0] * x0[:, :, None]  # Psi (x0_i, 0)
    u = mean + np.einsum("nab,ndb->nda", chol, pairs)
    return np.concatenate([u[:, :, 0], u[:, :, 1]], axis=1), chol


# ---------------------------------------------------------------------------------------------
# Data: the targets of the experiment schema, and sample-only data sets.

def matrix(value, at, rows=None, cols=None):
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(at, value, "must be a matrix of numbers")
    if a.ndim != 2 or (rows is not None and a.shape[0] != rows) or (
            cols is not None and a.shape[1] != cols):
        raise ConfigError(at, value, "has the wrong shape")
    return a


DATASETS = ("two-moons", "checkerboard", "swiss-roll")


def dataset_points(name, n, rng):
    """n points of a 2-D data set before noise and scale (README, "Learned denoisers")."""
    u = rng.random(n)
    if name == "two-moons":  # two interleaved half circles, centred
        upper = rng.random(n) < 0.5
        theta = math.pi * u
        x = np.where(upper, np.cos(theta), 1 - np.cos(theta))
        y = np.where(upper, np.sin(theta), 0.5 - np.sin(theta))
        return np.stack([x - 0.5, y - 0.25], axis=1)
    if name == "checkerboard":  # uniform on the 8 dark squares of a 4 x 4 board on [-2, 2]^2
        square = rng.integers(0, 8, n)
        row = square // 2
        col = 2 * (square % 2) + (row % 2)
        return np.stack([col - 2 + u, row - 2 + rng.random(n)], axis=1)
    # swiss-roll: (u cos u, u sin u) / 5 with u = 1.5 pi (1 + 2 U)
    angle = 1.5 * math.pi * (1 + 2 * u)
    return np.stack([angle * np.cos(angle), angle * np.sin(angle)], axis=1) / 5


def cholesky(cov, at):
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ConfigError(at, cov.tolist(), "must be symmetric positive definite")


class Target:
    def __init__(self, block):
        kind = field(block, "target", "type", kind=str,
                     choices=("dirac", "gaussian", "gmm", "dataset"))
        self.kind = kind
        if kind == "dirac":
            check_keys(block, "target", ("type", "point"))
            self.point = np.asarray(field(block, "target", "point"), dtype=np.float64)
            self.dim = self.point.size
        elif kind == "gaussian":
            check_keys(block, "target", ("type", "mean", "cov"))
            self.means = np.asarray([field(block, "target", "mean")], dtype=np.float64)
            self.dim = self.means.shape[1]
            self.chols = [cholesky(
                matrix(field(block, "target", "cov"), "target.cov", self.dim, self.dim),
                "target.cov")]
            self.weights = np.ones(1)
        elif kind == "gmm":
            check_keys(block, "target", ("type", "weights", "means", "covs", "diag_covs", "labels"))
            self.weights = matrix([field(block, "target", "weights")], "target.weights")[0]
            if np.any(self.weights <= 0):
                raise ConfigError("target.weights", block["weights"], "must be positive")
            self.means = matrix(field(block, "target", "means"), "target.means",
                                rows=self.weights.size)
            self.dim = self.means.shape[1]
            if ("covs" in block) == ("diag_covs" in block):
                raise ConfigError("target", block, "needs exactly one of covs and diag_covs")
            if "covs" in block:
                if len(block["covs"]) != self.weights.size:
                    raise ConfigError("target.covs", block["covs"],
                                      f"needs {self.weights.size} matrices (one per weight)")
                self.chols = [cholesky(matrix(c, f"target.covs[{k}]", self.dim, self.dim),
                                       f"target.covs[{k}]") for k, c in enumerate(block["covs"])]
            else:
                diag = matrix(block["diag_covs"], "target.diag_covs", self.weights.size, self.dim)
                self.chols = [np.diag(np.sqrt(d)) for d in diag]
            self.weights = self.weights / self.weights.sum()
            if "labels" in block:
                labels = block["labels"]
                if (not isinstance(labels, list) or len(labels) != self.weights.size or any(
                        isinstance(y, bool) or not isinstance(y, int) or not 0 <= y < 1000
                        for y in labels)):
                    raise ConfigError("target.labels", labels,
                                      f"must be {self.weights.size} integers from 0 to 999 "
                                      "(one class label per component)")
                self.labels = np.asarray(labels, dtype=np.int64)
        else:
            check_keys(block, "target", ("type", "name", "noise", "scale"))
            self.name = field(block, "target", "name", kind=str, choices=DATASETS)
            self.noise = field(block, "target", "noise", 0.05, float)
            self.scale = field(block, "target", "scale", 1.0, float, positive=True)
            if not 0 <= self.noise <= 1e6:
                raise ConfigError("target.noise", self.noise, "must be in [0, 1e6] (as pflow's)")
            if self.scale > 1e6:
                raise ConfigError("target.scale", self.scale, "must be in (0, 1e6] (as pflow's)")
            self.dim = 2

    labels = None  # class label per gmm component, when the target has them

    def classes(self):
        return 0 if self.labels is None else int(self.labels.max()) + 1

    def sample(self, n, rng):
        return self.sample_labelled(n, rng)[0]

    def sample_labelled(self, n, rng):
        """n samples and their class labels (None for an unlabelled target); the same draws as
        sample(), so unconditional models train on the same data as before labels existed."""
        if self.kind == "dirac":
            return np.tile(self.point, (n, 1)), None
        if self.kind == "dataset":
            base = dataset_points(self.name, n, rng)
            return self.scale * (base + self.noise * rng.standard_normal((n, 2))), None
        k = rng.choice(self.weights.size, size=n, p=self.weights)
        z = rng.standard_normal((n, self.dim))
        chol = np.stack(self.chols)[k]  # n x d x d
        x = self.means[k] + np.einsum("nij,nj->ni", chol, z)
        return x, (None if self.labels is None else self.labels[k])


# ---------------------------------------------------------------------------------------------
# The network: input [x; embedding(tau); one-hot(label), for a class-conditional model], tau = t
# or lambda; activation after every layer but the last (the layout of model format 1).

class Embedding:
    def __init__(self, block, path):
        check_keys(block, path, ("type", "frequencies", "count", "min_frequency",
                                 "max_frequency"))
        self.kind = field(block, path, "type", kind=str, choices=("raw", "fourier"))
        self.frequencies = []
        if self.kind == "fourier":
            if "frequencies" in block:
                freqs = block["frequencies"]
                if not isinstance(freqs, list) or not all(
                        isinstance(f, (int, float)) and not isinstance(f, bool) and
                        math.isfinite(f) for f in freqs):
                    raise ConfigError(f"{path}.frequencies", freqs, "must be a list of numbers")
                self.frequencies = [float(f) for f in freqs]
            else:  # geometric spacing between min_frequency and max_frequency
                count = field(block, path, "count", 8, int, positive=True)
                lo = field(block, path, "min_frequency", 1.0, float, positive=True)
                hi = field(block, path, "max_frequency", 64.0, float, positive=True)
                self.frequencies = list(np.geomspace(lo, hi, count)) if count > 1 else [lo]
            if not self.frequencies:
                raise ConfigError(f"{path}.frequencies", [], "needs at least one frequency")

    def width(self):
        return 1 if self.kind == "raw" else 2 * len(self.frequencies)

    def describe(self):
        if self.kind == "raw":
            return {"type": "raw"}
        return {"type": "fourier", "frequencies": [float(f) for f in self.frequencies]}

    def __call__(self, tau):  # tau: [n, 1]
        if self.kind == "raw":
            return tau
        f = torch.tensor(self.frequencies, dtype=tau.dtype)
        return torch.cat([torch.sin(tau * f), torch.cos(tau * f)], dim=1)


def activation_function(name):
    return {
        "silu": torch.nn.functional.silu,
        "gelu": torch.nn.functional.gelu,  # the exact erf form (approximate="none")
        "tanh": torch.tanh,
        # log(1 + e^x) exactly (torch's softplus switches to x above a threshold)
        "softplus": lambda h: torch.logaddexp(h, torch.zeros_like(h)),
        "relu": torch.relu,
    }[name]


class Mlp(torch.nn.Module):
    def __init__(self, dim, spec, classes=0):
        super().__init__()
        self.spec = spec
        self.embedding = spec["embedding"]
        self.classes = classes
        widths = ([dim + self.embedding.width() + classes] + [spec["width"]] * spec["depth"] +
                  [dim])
        self.layers = torch.nn.ModuleList(
            torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.act = activation_function(spec["activation"])

    def forward(self, x, tau, labels=None):
        """labels: [n] integers, -1 for "no label" (all-zero one-hot); None: all -1."""
        parts = [x, self.embedding(tau)]
        if self.classes:
            onehot = torch.zeros(x.shape[0], self.classes, dtype=x.dtype)
            if labels is not None:
                rows = np.nonzero(labels >= 0)[0]
                onehot[rows, labels[rows]] = 1
            parts.append(onehot)
        h = torch.cat(parts, dim=1)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i + 1 < len(self.layers):
                h = self.act(h)
        return h


def parse_model(block):
    check_keys(block, "model", ("width", "depth", "activation", "output", "time_input",
                                "time_embedding", "conditional"))
    conditional = block.get("conditional", False)
    if not isinstance(conditional, bool):
        raise ConfigError("model.conditional", conditional, "must be true or false")
    return {
        "conditional": conditional,
        "width": field(block, "model", "width", 64, int, positive=True),
        "depth": field(block, "model", "depth", 3, int, positive=True),
        "activation": field(block, "model", "activation", "silu", str, ACTIVATIONS),
        "output": field(block, "model", "output", "eps", str, OUTPUTS),
        "time_input": field(block, "model", "time_input", "t", str, TIME_INPUTS),
        "embedding": Embedding(block.get("time_embedding", {"type": "raw"}),
                               "model.time_embedding"),
    }


def parse_training(block, sde):
    check_keys(block, "training", ("steps", "batch", "lr", "lr_schedule", "warmup",
                                   "weight_decay", "ema", "seed", "t_min", "t_max", "t_draw",
                                   "dtype", "label_dropout"))
    spec = {
        "steps": field(block, "training", "steps", 2000, int, positive=True),
        "batch": field(block, "training", "batch", 256, int, positive=True),
        "lr": field(block, "training", "lr", 2e-3, float, positive=True),
        "lr_schedule": field(block, "training", "lr_schedule", "cosine", str, LR_SCHEDULES),
        "warmup": field(block, "training", "warmup", 0, int),
        "weight_decay": field(block, "training", "weight_decay", 0.0, float),
        "ema": field(block, "training", "ema", 0.0, float),
        "seed": field(block, "training", "seed", 0, int),
        "t_min": field(block, "training", "t_min", 1e-3, float, positive=True),
        "t_max": field(block, "training", "t_max", 1.0, float, positive=True),
        "t_draw": field(block, "training", "t_draw", "uniform", str, T_DRAWS),
        "dtype": field(block, "training", "dtype", "float64", str, ("float32", "float64")),
        "label_dropout": field(block, "training", "label_dropout", 0.1, float),
    }
    if not 0 < spec["label_dropout"] < 1:
        raise ConfigError("training.label_dropout", spec["label_dropout"],
                          "must be in (0, 1): the conditional and the unconditional model both "
                          "need training")
    if spec["seed"] < 0:
        raise ConfigError("training.seed", spec["seed"], "must be >= 0")
    if not 0 <= spec["ema"] < 1:
        raise ConfigError("training.ema", spec["ema"], "must be in [0, 1)")
    if spec["t_min"] >= spec["t_max"]:
        raise ConfigError("training.t_min", spec["t_min"], "must be below training.t_max")
    if sde.kind in MATRIX_SDES and spec["t_draw"] != "uniform":
        raise ConfigError("training.t_draw", spec["t_draw"],
                          f"{sde.kind} has no lambda: use uniform")
    if sde.kind in ("vp-cosine", "rectified-flow") and spec["t_max"] >= 1:
        raise ConfigError("training.t_max", spec["t_max"], f"{sde.kind} needs t_max < 1")
    return spec


# ---------------------------------------------------------------------------------------------
# Training.

def draw_times(sde, spec, n, rng):
    u = rng.random(n)
    if spec["t_draw"] == "uniform":
        return spec["t_min"] + (spec["t_max"] - spec["t_min"]) * u
    lam_hi, lam_lo = sde.lam(spec["t_min"]), sde.lam(spec["t_max"])
    return sde.t_of_lambda(lam_lo + (lam_hi - lam_lo) * u, spec["t_min"], spec["t_max"])


def network_time(sde, model_spec, t):
    return sde.lam(t) if model_spec["time_input"] == "lambda" else t


def training_loss(model, sde, model_spec, x0, eps, t, dtype, labels=None):
    """The denoising objective of the model's output (module docstring); labels: the one-hot
    inputs of a class-conditional model (-1: none)."""
    if sde.kind in ("linear", "blurring"):  # score output: |L^T s_hat + z|^2
        x, chol = perturb(sde, x0, t, eps)
        out = model(torch.tensor(x, dtype=dtype), torch.tensor(t[:, None], dtype=dtype), labels)
        residual = (torch.einsum("nba,nb->na", torch.tensor(chol, dtype=dtype), out) +
                    torch.tensor(eps, dtype=dtype))
        return (residual ** 2).mean()
    if sde.kind == "cld":  # score output: |L^T s_hat + z|^2 per coordinate pair
        u, chol = perturb(sde, x0, t, eps)
        d = x0.shape[1]
        out = model(torch.tensor(u, dtype=dtype), torch.tensor(t[:, None], dtype=dtype), labels)
        pairs = torch.stack([out[:, :d], out[:, d:]], dim=2)  # [n, d, 2]
        z = torch.tensor(np.stack([eps[:, :d], eps[:, d:]], axis=2), dtype=dtype)
        residual = torch.einsum("nba,ndb->nda", torch.tensor(chol, dtype=dtype), pairs) + z
        return (residual ** 2).mean()
    alpha, sigma = sde.alpha_sigma(t)
    alpha_t = torch.tensor(alpha[:, None], dtype=dtype)
    sigma_t = torch.tensor(sigma[:, None], dtype=dtype)
    x0_t = torch.tensor(x0, dtype=dtype)
    eps_t = torch.tensor(eps, dtype=dtype)
    xt = alpha_t * x0_t + sigma_t * eps_t
    tau = torch.tensor(network_time(sde, model_spec, t)[:, None], dtype=dtype)
    out = model(xt, tau, labels)
    output = model_spec["output"]
    if output == "eps":
        residual = out - eps_t
    elif output == "x0":
        residual = out - x0_t
    elif output == "v":
        residual = out - (alpha_t * eps_t - sigma_t * x0_t)
    elif output == "velocity":
        dalpha, dsigma = sde.rates(t)
        residual = out - (torch.tensor(dalpha[:, None], dtype=dtype) * x0_t +
                          torch.tensor(dsigma[:, None], dtype=dtype) * eps_t)
    else:
        residual = sigma_t * out + eps_t
    return (residual ** 2).mean()


def train(config, quiet):
    check_keys(config, "config", ("name", "description", "sde", "target", "model", "training"))
    sde = make_sde(field(config, "config", "sde"))
    target = Target(field(config, "config", "target"))
    model_spec = parse_model(config.get("model", {}))
    if sde.kind in MATRIX_SDES and (model_spec["output"] != "score" or
                                    model_spec["time_input"] != "t"):
        raise ConfigError("model.output", model_spec["output"],
                          f"{sde.kind} needs output \"score\" and time input \"t\" (eps, x0 "
                          "and v need a scalar SDE)")
    training_block = config.get("training", {})
    spec = parse_training(training_block, sde)
    if model_spec["conditional"] and target.labels is None:
        raise ConfigError("model.conditional", True,
                          "needs a gmm target with \"labels\" (one class label per component)")
    if not model_spec["conditional"] and isinstance(training_block, dict) and (
            "label_dropout" in training_block):
        raise ConfigError("training.label_dropout", training_block["label_dropout"],
                          "applies to class-conditional models only (\"model\": "
                          "{\"conditional\": true})")
    classes = target.classes() if model_spec["conditional"] else 0
    dtype = torch.float64 if spec["dtype"] == "float64" else torch.float32

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(spec["seed"])
    rng = np.random.default_rng(spec["seed"])
    dim = state_dim(sde, target.dim)
    model = Mlp(dim, model_spec, classes).to(dtype)
    ema = copy.deepcopy(model) if spec["ema"] > 0 else model
    optimiser = torch.optim.AdamW(model.parameters(), lr=spec["lr"],
                                  weight_decay=spec["weight_decay"])

    def learning_rate(step):  # linear warm-up, then constant or cosine decay to 0
        if step < spec["warmup"]:
            return (step + 1) / spec["warmup"]
        if spec["lr_schedule"] == "constant":
            return 1.0
        progress = (step - spec["warmup"]) / max(1, spec["steps"] - spec["warmup"])
        return 0.5 * (1 + math.cos(math.pi * progress))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, learning_rate)
    start = time.perf_counter()
    recent = []
    for step in range(spec["steps"]):
        x0, labels = target.sample_labelled(spec["batch"], rng)
        eps = rng.standard_normal((spec["batch"], dim))
        t = draw_times(sde, spec, spec["batch"], rng)
        if classes:  # label dropout: the unconditional model shares the network
            labels = np.where(rng.random(spec["batch"]) < spec["label_dropout"], -1, labels)
        else:
            labels = None
        loss = training_loss(model, sde, model_spec, x0, eps, t, dtype, labels)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        if spec["ema"] > 0:
            with torch.no_grad():
                for p_ema, p in zip(ema.parameters(), model.parameters()):
                    p_ema.mul_(spec["ema"]).add_(p, alpha=1 - spec["ema"])
        recent = (recent + [loss.item()])[-100:]
        if not quiet and (step + 1) % max(1, spec["steps"] // 10) == 0:
            print(f"train: step {step + 1}/{spec['steps']}  loss (mean of last 100) "
                  f"{np.mean(recent):.6g}", file=sys.stderr)
    seconds = time.perf_counter() - start
    return sde, target, model_spec, spec, ema, float(np.mean(recent)), seconds


def write_model(path, config, sde, target, model_spec, spec, model, final_loss, seconds):
    """Model format 1 (README, "Model file format, version 1")."""
    model64 = copy.deepcopy(model).to(torch.float64)
    rng = np.random.default_rng(12345)
    n = 64  # check points: samples of p_t at random t in the training range
    t = draw_times(sde, dict(spec, t_draw="uniform"), n, rng)
    x0, labels = target.sample_labelled(n, rng)
    x, _ = perturb(sde, x0, t, rng.standard_normal((n, state_dim(sde, target.dim))))
    if model64.classes:  # every other check point without its label
        labels = np.where(np.arange(n) % 2 == 1, -1, labels)
    else:
        labels = None
    with torch.no_grad():
        out = model64(torch.tensor(x), torch.tensor(network_time(sde, model_spec, t)[:, None]),
                      labels)
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = np.int64(FORMAT_VERSION)
        f.attrs["architecture"] = "mlp"
        f.attrs["output"] = model_spec["output"]
        f.attrs["activation"] = model_spec["activation"]
        f.attrs["time_input"] = model_spec["time_input"]
        f.attrs["time_embedding"] = json.dumps(model_spec["embedding"].describe())
        if model64.classes:  # the optional extension: one-hot label inputs after the embedding
            f.attrs["classes"] = np.int64(model64.classes)
        f.attrs["sde"] = json.dumps(config["sde"])
        f.attrs["target"] = json.dumps(config["target"])
        f.attrs["training"] = json.dumps({
            "config": config,
            # every training setting with its default filled in: pflow reads the time range
            "resolved": {k: v for k, v in spec.items()
                         if k != "label_dropout" or model64.classes},
            "final_loss": final_loss, "torch_version": torch.__version__, "seconds": seconds})
        for i, layer in enumerate(model64.layers):
            f.create_dataset(f"layers/{i}/weight", data=layer.weight.detach().numpy())
            f.create_dataset(f"layers/{i}/bias", data=layer.bias.detach().numpy())
        f.create_dataset("check/x", data=x)
        f.create_dataset("check/t", data=t)
        f.create_dataset("check/output", data=out.numpy())
        if labels is not None:
            f.create_dataset("check/label", data=labels.astype(np.float64))
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--out", required=True, help="the model file to write (HDF5)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    try:
        with open(args.config) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        print(f"train_denoiser: {args.config}: {e}", file=sys.stderr)
        return 2
    try:
        sde, target, model_spec, spec, model, loss, seconds = train(config, args.quiet)
    except ConfigError as e:
        print(f"train_denoiser: {args.config}: {e}", file=sys.stderr)
        return 2
    try:
        write_model(args.out, config, sde, target, model_spec, spec, model, loss, seconds)
    except OSError as e:
        if os.path.exists(args.out + ".tmp"):
            os.remove(args.out + ".tmp")
        print(f"train_denoiser: {args.out}: cannot be written: {e}", file=sys.stderr)
        return 3
    if not args.quiet:
        print(f"train_denoiser: wrote {args.out} (final loss {loss:.6g}, {seconds:.1f} s)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
