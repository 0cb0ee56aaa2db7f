#!/usr/bin/python3
"""Benchmark (not a test): pflow's C++ MLP forward against PyTorch's float64 forward of the same
network, on the same number of threads (README, "Learned denoisers": benchmark).

Builds a random network (D = 2 in and out, three hidden layers of width 128, SiLU, raw time
input; PyTorch's default initialisation, seed 0), writes it in model format 1 (with torch's
float64 outputs as /check, so pflow checks that both compute the same function), times torch's
forward on a batch of 10,000 particles (median of 20 after 3 warm-up calls), runs
build/pflow_bench_mlp on the same file and batch, and prints both times and their ratio.
Usage: /usr/bin/python3 scripts/bench_mlp.py [--batch 10000] [--width 128] [--threads 1]"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import train_denoiser  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=10000)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--bench", default=os.path.join(here, "..", "build", "pflow_bench_mlp"))
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    spec = train_denoiser.parse_model({"width": args.width, "depth": args.depth,
                                       "activation": "silu", "output": "eps"})
    model = train_denoiser.Mlp(2, spec).to(torch.float64)
    sde = train_denoiser.ScalarSde({"type": "vp-linear"})
    target = train_denoiser.Target({"type": "gaussian", "mean": [0.0, 0.0],
                                    "cov": [[1.0, 0.0], [0.0, 1.0]]})
    config = {"sde": {"type": "vp-linear"}, "target": {"type": "gaussian", "mean": [0.0, 0.0],
                                                       "cov": [[1.0, 0.0], [0.0, 1.0]]}}
    path = os.path.join("/tmp", f"pflow_bench_mlp_{os.getpid()}.h5")
    train_denoiser.write_model(path, config, sde, target, spec,
                               {"t_min": 1e-3, "t_max": 1.0}, model, 0.0, 0.0)
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.uniform(-1, 1, (args.batch, 2)))
    tau = torch.tensor(rng.uniform(0, 1, (args.batch, 1)))
    times = []
    with torch.no_grad():
        for rep in range(args.reps + 3):
            start = time.perf_counter()
            model(x, tau)
            if rep >= 3:
                times.append(time.perf_counter() - start)
    torch_ms = 1e3 * float(np.median(times))
    print(f"torch {torch.__version__} float64 forward, batch {args.batch}, width {args.width}, "
          f"{args.depth} hidden layers, {args.threads} thread(s): median {torch_ms:.3f} ms, "
          f"fastest {1e3 * min(times):.3f} ms")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run([args.bench, path, "--batch", str(args.batch), "--reps",
                          str(args.reps)], capture_output=True, text=True, env=env, check=True)
    os.remove(path)
    print("pflow " + out.stdout.strip())
    pflow_ms = float(out.stdout.split("median ")[1].split(" ms")[0])
    print(f"ratio torch / pflow (median): {torch_ms / pflow_ms:.2f}")


if __name__ == "__main__":
    main()
