#!/usr/bin/python3
"""Example: a PyTorch module as pflow's denoiser, and a solver's order measured on it.

A small MLP eps(x, t) in float64 on the CPU (random weights, seed 0: any smooth network will do;
a trained one is loaded the same way) is wrapped with pflow.python_model. DPM-Solver++(2M) solves
its probability-flow ODE on the logsnr grid at NFE 10 to 320; each final state is compared with
the same ODE solved by Bulirsch-Stoer at tolerance 1e-12, and the order is the slope of log error
against log NFE.

    PYTHONPATH=build/python /usr/bin/python3 examples/torch_model_order.py
"""
import numpy as np
import torch

import pflow

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
net = torch.nn.Sequential(torch.nn.Linear(3, 64), torch.nn.SiLU(), torch.nn.Linear(64, 64),
                          torch.nn.SiLU(), torch.nn.Linear(64, 2))


@torch.no_grad()
def eps(x, t):
    """The network on a batch: x [n, 2] (numpy, a view pflow owns) and the time t."""
    xt = torch.from_numpy(x)
    inputs = torch.cat([xt, torch.full((xt.shape[0], 1), t)], dim=1)
    return (0.5 * torch.tanh(net(inputs))).numpy()


sde = pflow.make_sde({"type": "vp-linear", "beta_min": 0.1, "beta_max": 20.0}, dim=2)
model = pflow.python_model(eps, output="eps")
x_T = np.random.default_rng(0).standard_normal((256, 2))
t_start, t_end = 1.0, 1e-3
reference = pflow.solve({"name": "bulirsch-stoer", "tolerance": 1e-12}, sde, model,
                        [t_start, t_end], x_T)
print(f"reference: Bulirsch-Stoer, tolerance 1e-12, {reference.nfe} evaluations")
nfes, errors = [], []
print("| NFE | max error | order (pairwise) |\n|---|---|---|")
for steps in [10, 20, 40, 80, 160, 320]:
    grid = pflow.time_grid(sde, "logsnr", t_start, t_end, steps)
    r = pflow.solve("dpm-solver++-2m", sde, model, grid, x_T)
    nfes.append(r.nfe)
    errors.append(float(np.abs(r.x - reference.x).max()))
    pair = np.log(errors[-2] / errors[-1]) / np.log(nfes[-1] / nfes[-2]) if len(errors) > 1 else None
    print(f"| {r.nfe} | {errors[-1]:.3e} | {'' if pair is None else f'{pair:.2f}'} |")
slope = -np.polyfit(np.log(nfes[-4:]), np.log(errors[-4:]), 1)[0]
print(f"fitted order over the last four levels: {slope:.2f} (declared 2)")
