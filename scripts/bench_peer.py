#!/usr/bin/python3
"""The PyTorch peer of pflow's sampler benchmark (README "Speed": against PyTorch).

Reads the problem build/pflow_bench_sampler wrote (a Gaussian mixture, the time grid, the initial
states and pflow's final states), runs the same DPM-Solver++(2M) solve in PyTorch, float64, on the
same number of threads, and prints its time (best of --reps after one warm-up solve), pflow's
time from the file, their ratio and the largest difference of the final states. When the file
holds x_reference (the first M states solved in float128 by pflow_bench_sampler), it also prints
each side's error against it: which program's rounding the difference is.

The peer is written as a competent PyTorch user would write it: particles as a batch [n, d]; the
model's work per call is batched over the K components, with one Cholesky factorisation of the
K marginal covariances per call (torch.linalg.cholesky on [K, d, d]) and triangular solves
(torch.linalg.solve_triangular) for the whitened residuals and the precision products; the
responsibilities by torch.softmax; vp-linear's alpha and sigma in closed form
(alpha = exp(-t^2 (b1 - b0) / 4 - t b0 / 2), sigma^2 = -expm1(2 log alpha)); the solver is
Lu et al. 2022b, Alg. 2 (first step first order, then 2M), the update
x_t = (sigma_t / sigma_s) x - alpha_t expm1(-h) D in lambda = log(alpha / sigma).

With --states it also saves its final states (.npy), and it names the particle where the two
programs differ most: scripts/bench measures both sides against a float128 solve of that state.

Usage: scripts/bench_peer.py FILE.h5 [--threads T] [--reps 3] [--warmup 1] [--states X.npy]"""
import argparse
import time

import h5py
import numpy as np
import torch

BETA_MIN, BETA_MAX = 0.1, 20.0


def log_alpha(t):
    return -0.25 * t * t * (BETA_MAX - BETA_MIN) - 0.5 * t * BETA_MIN


def alpha_sigma_lambda(t):
    la = log_alpha(t)
    alpha = np.exp(la)
    sigma = np.sqrt(-np.expm1(2 * la))
    return alpha, sigma, np.log(alpha) - np.log(sigma)


class MixtureDenoiser:
    """x0 prediction of the exact mixture score: x0 = (x + sigma^2 score) / alpha."""

    def __init__(self, weights, means, covs):
        self.log_w = torch.log(weights)  # [K]
        self.means = means  # [K, d]
        self.covs = covs  # [K, d, d]
        self.eye = torch.eye(means.shape[1], dtype=torch.float64)

    def x0(self, x, alpha, sigma):
        # Marginal covariances C_k = alpha^2 S_k + sigma^2 I, factorised once per call.
        chol = torch.linalg.cholesky(alpha * alpha * self.covs + sigma * sigma * self.eye)
        diff = (x.unsqueeze(0) - alpha * self.means.unsqueeze(1)).transpose(1, 2)  # [K, d, n]
        white = torch.linalg.solve_triangular(chol, diff, upper=False)  # L^{-1} (x - m)
        log_det = 2 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(dim=1)  # [K]
        terms = self.log_w.unsqueeze(1) - 0.5 * (white.square().sum(dim=1) + log_det.unsqueeze(1))
        resp = torch.softmax(terms, dim=0)  # [K, n]
        prec = torch.linalg.solve_triangular(chol.transpose(1, 2), white * resp.unsqueeze(1),
                                             upper=True)  # gamma_k C_k^{-1} (x - m_k)
        score = -prec.sum(dim=0).transpose(0, 1)  # [n, d]
        return (x + sigma * sigma * score) / alpha


def dpm_solver_pp_2m(model, x, grid):
    points = [alpha_sigma_lambda(t) for t in grid]
    previous = None  # (lambda, x0) of the step before
    for i in range(len(grid) - 1):
        (a_s, s_s, l_s), (a_t, s_t, l_t) = points[i], points[i + 1]
        h = l_t - l_s
        m0 = model.x0(x, a_s, s_s)
        if previous is None:
            d = m0
        else:
            r0 = (l_s - previous[0]) / h
            d = m0 + (m0 - previous[1]) / (2 * r0)
        x = (s_t / s_s) * x - (a_t * np.expm1(-h)) * d
        previous = (l_s, m0)
    return x


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed solves first")
    parser.add_argument("--states", help="write PyTorch's final states here (.npy, [n, d])")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with h5py.File(args.file, "r") as f:
        weights = torch.from_numpy(f["weights"][...])
        means = torch.from_numpy(f["means"][...])
        covs = torch.from_numpy(f["covs"][...])
        grid = [float(t) for t in f["grid"][...]]
        x_start = torch.from_numpy(f["x_start"][...])
        x_pflow = f["x_end"][...]
        pflow_seconds = float(f.attrs["seconds"])
        x_ref = f["x_reference"][...] if "x_reference" in f else None
    model = MixtureDenoiser(weights, means, covs)
    for _ in range(args.warmup):
        dpm_solver_pp_2m(model, x_start, grid)
    best = float("inf")
    for _ in range(args.reps):
        start = time.perf_counter()
        x = dpm_solver_pp_2m(model, x_start, grid)
        best = min(best, time.perf_counter() - start)
    def relative(a, b):  # max |a - b| / max(1, max |b|)
        return float(np.abs(a - b).max()) / max(1.0, float(np.abs(b).max()))

    diff = relative(x.numpy(), x_pflow)
    worst = int(np.abs(x.numpy() - x_pflow).max(axis=1).argmax())  # the particle of diff
    if args.states:
        np.save(args.states, x.numpy())
    n, d = x_start.shape
    errors = ""
    if x_ref is not None:
        m = x_ref.shape[0]
        errors = (f", against float128 ({m} states): pflow {relative(x_pflow[:m], x_ref):.2e} "
                  f"torch {relative(x.numpy()[:m], x_ref):.2e}")
    print(f"n {n} d {d} K {weights.shape[0]} threads {args.threads}: torch {best:.6f} s, "
          f"pflow {pflow_seconds:.6f} s, ratio {best / pflow_seconds:.2f}{errors}, "
          f"max |x_torch - x_pflow| / max(1, max |x_pflow|) {diff:.2e} at particle {worst}")


if __name__ == "__main__":
    main()
