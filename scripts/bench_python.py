#!/usr/bin/python3
"""Overhead of pflow.python_model (README "Python").

1. A PyTorch MLP (float64, CPU, width 128, three hidden layers, SiLU) as the eps-model of a
   20-step dpm-solver++-2m solve of 10,000 2-D particles: the solve's wall time against the sum
   of the model's own call times (timed inside the wrapped function: torch.from_numpy, the
   forward pass, .numpy()). Best of --repeats.
2. The per-call overhead: a trivial model (returns its input) on 1 and 10,000 particles, the
   solve's wall time per model evaluation minus the function's own time per call.

Usage: PYTHONPATH=build/python /usr/bin/python3 scripts/bench_python.py [--repeats 5] [--threads 1]
"""
import argparse
import time

import numpy as np
import torch

import pflow

parser = argparse.ArgumentParser()
parser.add_argument("--repeats", type=int, default=5)
parser.add_argument("--threads", type=int, default=1)
args = parser.parse_args()
torch.set_num_threads(args.threads)
torch.set_default_dtype(torch.float64)
torch.manual_seed(0)
sde = pflow.make_sde({"type": "vp-linear", "beta_min": 0.1, "beta_max": 20.0}, dim=2)
grid = pflow.time_grid(sde, "logsnr", 1.0, 1e-3, 20)
width = 128
net = torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.SiLU(),
                          torch.nn.Linear(width, width), torch.nn.SiLU(),
                          torch.nn.Linear(width, width), torch.nn.SiLU(),
                          torch.nn.Linear(width, 2))
spent = [0.0, 0]


@torch.no_grad()
def eps(x, t):
    start = time.perf_counter()
    xt = torch.from_numpy(x)
    out = net(torch.cat([xt, torch.full((xt.shape[0], 1), t)], dim=1)).numpy()
    spent[0] += time.perf_counter() - start
    spent[1] += 1
    return out


def trivial(x, t):
    start = time.perf_counter()
    spent[0] += time.perf_counter() - start
    spent[1] += 1
    return x


def measure(fn, n):
    x = np.random.default_rng(0).standard_normal((n, 2))
    model = pflow.python_model(fn, output="eps")
    best = None
    for _ in range(args.repeats):
        spent[:] = [0.0, 0]
        start = time.perf_counter()
        r = pflow.solve("dpm-solver++-2m", sde, model, grid, x)
        wall = time.perf_counter() - start
        if best is None or wall < best[0]:
            best = (wall, spent[0], spent[1], r.nfe)
    return best


print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); best of {args.repeats}")
wall, model_s, calls, nfe = measure(eps, 10_000)
print(f"MLP width {width}, 3 hidden layers, batch 10000, dpm-solver++-2m, {nfe} NFE: "
      f"solve {wall * 1e3:.1f} ms, the model's own calls {model_s * 1e3:.1f} ms ({calls} calls), "
      f"ratio {wall / model_s:.3f}")
for n in [1, 10_000]:
    wall, model_s, calls, nfe = measure(trivial, n)
    print(f"trivial model, {n} particle(s): {(wall - model_s) / calls * 1e6:.1f} us per call "
          f"outside the function ({calls} calls, solve {wall * 1e3:.2f} ms)")
