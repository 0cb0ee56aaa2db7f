#!/usr/bin/python3
"""Writes tests/bad_configs/NN_name.json from a valid base config, one defect each, and
tests/bad_configs/expected.tsv (file <TAB> message fragment). Run it after changing the list;
the files are committed. Usage: /usr/bin/python3 tests/make_bad_configs.py"""
import copy
import json
import os

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "bad_configs")
base = json.load(open(os.path.join(here, "data", "tiny_convergence.json")))
gmm = {"type": "gmm", "weights": [0.4, 0.6], "means": [[-1.0, 0.0], [1.0, 0.5]],
       "covs": [[[0.2, 0.0], [0.0, 0.2]], [[0.3, 0.1], [0.1, 0.2]]]}


def edit(**changes):
    def apply(c):
        for path, value in changes.items():
            keys = path.split("__")
            node = c
            for k in keys[:-1]:
                node = node[int(k)] if isinstance(node, list) else node[k]
            last = keys[-1]
            if value is DELETE:
                del node[last]
            elif isinstance(node, list):
                node[int(last)] = value
            else:
                node[last] = value
        return c
    return apply


DELETE = object()
cases = [
    ("unknown_top_key", edit(solver=["ddim"]), "config.solver = [\"ddim\"]: unknown key (did you mean 'solvers'?)"),
    ("missing_name", edit(name=DELETE), "config.name = (missing): is required"),
    ("bad_name_chars", edit(name="my run/1"), "name = my run/1: must be letters"),
    ("name_not_string", edit(name=3), "config.name = 3: must be a string"),
    ("unknown_kind", edit(kind="convergance"), "did you mean 'convergence'"),
    ("unknown_precision", edit(precision="quad"), "config.precision = quad: is not one of double, mp50"),
    ("unknown_reference", edit(reference="exakt"), "did you mean 'exact'"),
    ("negative_seed", edit(seed=-1), "seed = -1: must be a non-negative integer"),
    ("missing_sde", edit(sde=DELETE), "sde = (missing): is required"),
    ("unknown_sde", edit(sde={"type": "vp-linaer"}), "did you mean 'vp-linear'"),
    ("sde_unknown_param", edit(sde={"type": "vp-linear", "beta_mx": 20}), "sde.beta_mx"),
    ("sde_negative_beta", edit(sde={"type": "vp-linear", "beta_min": -0.1}), "sde.beta_min = -0.1"),
    ("sde_param_string", edit(sde={"type": "vp-linear", "beta_max": "20"}), "sde.beta_max = \"20\": must be a number"),
    ("missing_target", edit(target=DELETE), "target = (missing): is required"),
    ("unknown_target", edit(target={"type": "gausian"}), "did you mean 'gaussian'"),
    ("cov_not_spd", edit(target__cov=[[1.0, 2.0], [2.0, 1.0]]), "target.cov"),
    ("cov_not_symmetric", edit(target__cov=[[1.0, 0.5], [0.2, 1.0]]), "target.cov"),
    ("cov_wrong_size", edit(target__cov=[[1.0]]), "target.cov"),
    ("gmm_weights_sum", edit(target=dict(gmm, weights=[0.4, 0.5])), "target.weights"),
    ("gmm_negative_weight", edit(target=dict(gmm, weights=[-0.4, 1.4])), "target.weights"),
    ("gmm_means_count", edit(target=dict(gmm, means=[[-1.0, 0.0]])), "target.means"),
    ("gmm_ragged_means", edit(target=dict(gmm, means=[[-1.0, 0.0], [1.0]])), "target.means[1]"),
    ("unknown_denoiser", edit(denoiser={"type": "unet"}), "denoiser.type = unet"),
    ("missing_time", edit(time=DELETE), "time = (missing): is required"),
    ("t_end_zero", edit(time__t_end=0.0), "time.t_end = 0: must be positive"),
    ("t_end_negative", edit(time__t_end=-0.1), "time.t_end = -0.1"),
    ("t_start_below_end", edit(time__t_start=0.0005), "time.t_start = 5e-04: must exceed time.t_end"),
    ("t_start_beyond_T", edit(time__t_start=1.5), "time.t_start = 1.5: exceeds the SDE's T"),
    ("unknown_grid", edit(time__grid="log-snr"), "did you mean 'logsnr'"),
    ("time_unknown_key", edit(time__tstart=1.0), "time.tstart"),
    ("logsnr_on_cld", lambda c: dict(edit()(c), sde={"type": "cld"}, target={"type": "gaussian", "mean": [0.5], "cov": [[1.0]]}, init={"points": [[0.1, 0.2]]}),
     "time.grid = logsnr: needs lambda(t)"),
    ("list_not_decreasing", edit(time={"grid": "list", "times": [1.0, 0.5, 0.7, 0.1]}), "time.times[2] = 0.7"),
    ("missing_init", edit(init=DELETE), "init = (missing): is required"),
    ("init_wrong_dim", edit(init={"points": [[0.1, 0.2, 0.3]]}), "init.points[0]"),
    ("init_points_and_count", edit(init={"points": [[0.1, 0.2]], "count": 3}), "init.count"),
    ("init_count_zero", edit(init={"count": 0}), "init.count = 0"),
    ("init_not_numbers", edit(init={"points": [["a", 0.2]]}), "init.points[0][0]"),
    ("missing_solvers", edit(solvers=DELETE), "solvers = (missing): is required"),
    ("empty_solvers", edit(solvers=[]), "solvers = []: must be a non-empty array"),
    ("unknown_solver", edit(solvers=["ddim", "dpm-solver++3m"]), "solvers[1].name = dpm-solver++3m: unknown solver (did you mean 'dpm-solver++-3m'?)"),
    ("solver_bad_param", edit(solvers=[{"name": "unipc", "order": 7}]), "solvers[0].order = 7: must be between 1 and 3"),
    ("solver_unknown_param", edit(solvers=[{"name": "unipc", "varient": "bh1"}]), "solvers[0].varient"),
    ("solver_duplicate", edit(solvers=["ddim", "ddim"]), "appears twice"),
    ("solver_adaptive", edit(solvers=[{"name": "dopri5", "adaptive": True}]), "is adaptive"),
    ("solver_eta_range", edit(solvers=[{"name": "ddim", "eta": 2}]), "solvers[0].eta = 2"),
    ("solver_scalar_only_on_cld", lambda c: dict(edit()(c), sde={"type": "cld"}, target={"type": "gaussian", "mean": [0.5], "cov": [[1.0]]}, init={"points": [[0.1, 0.2]]}, time={"grid": "time-uniform"}, solvers=["dpm-solver-2"]),
     "needs a scalar SDE"),
    ("missing_nfe", edit(nfe=DELETE), "nfe = (missing): is required"),
    ("nfe_not_increasing", edit(nfe=[32, 16]), "nfe[1] = 16: NFE values must increase"),
    ("nfe_below_minimum", edit(solvers=["dpm-solver-3"], nfe=[2, 4]), "nfe[0] = 2: is below the minimum of dpm-solver-3"),
    ("nfe_not_integer", edit(nfe=[16.5]), "nfe[0] = 16.5: must be an integer"),
    ("nfe_zero", edit(nfe=[0, 8]), "nfe[0] = 0"),
    ("fit_levels_one", edit(fit_levels=1), "fit_levels = 1"),
    ("fit_levels_beyond_nfe", edit(fit_levels=5), "fit_levels = 5: exceeds the 4 NFE levels"),
    ("stochastic_deterministic_solver", edit(kind="stochastic", time__grid="time-uniform", solvers=["euler-maruyama", "ddim"]), "solvers[1] = ddim: is deterministic"),
    ("stochastic_ddim_eta", edit(kind="stochastic", time__grid="time-uniform", solvers=[{"name": "ddim", "eta": 0.5}]), "solvers[0].eta = 0.5: must be 1 for kind \"stochastic\""),
    ("stochastic_logsnr_grid", edit(kind="stochastic", solvers=["ddpm"]), "time.grid = logsnr: must be \"time-uniform\""),
    ("stochastic_nfe_not_power_of_two", edit(kind="stochastic", time__grid="time-uniform", solvers=["ddpm"], nfe=[16, 24]), "nfe[1] = 24: must be a power of two"),
    ("stochastic_brownian_too_coarse", edit(kind="stochastic", time__grid="time-uniform", solvers=["ddpm"], brownian_levels=8), "brownian_levels = 8"),
    ("brownian_levels_on_convergence", edit(brownian_levels=12), "brownian_levels = 12: applies to kind \"stochastic\" only"),
    ("abm_on_logsnr_in_t", edit(solvers=["ddim", "abm"]), "time.grid = logsnr: abm (solvers[1]) needs steps uniform in its variable: grid \"time-uniform\""),
    ("kernel_missing_times", lambda c: {"name": "k", "kind": "kernel", "sde": c["sde"], "target": c["target"]}, "times = (missing): is required"),
    ("kernel_time_beyond_T", lambda c: {"name": "k", "kind": "kernel", "sde": c["sde"], "target": c["target"], "times": [0.5, 2.0]}, "times[1] = 2"),
    ("odeint_lambda_on_cld", lambda c: dict(edit()(c), sde={"type": "cld"}, target={"type": "gaussian", "mean": [0.5], "cov": [[1.0]]}, init={"points": [[0.1, 0.2]]}, time={"grid": "time-uniform"}, solvers=["rk4", {"name": "rk4", "variable": "lambda", "label": "rk4-lambda"}]),
     "solvers[1] = rk4-lambda: needs a scalar SDE (alpha, sigma, lambda), not cld; integrate in t"),
]

for f in os.listdir(out):
    os.remove(os.path.join(out, f))
lines = []
for i, (name, change, fragment) in enumerate(cases):
    c = change(copy.deepcopy(base))
    file = f"{i:02d}_{name}.json"
    with open(os.path.join(out, file), "w") as fh:
        json.dump(c, fh, indent=1)
    lines.append(f"{file}\t{fragment}")
open(os.path.join(out, "expected.tsv"), "w").write("\n".join(lines) + "\n")
print(f"{len(cases)} bad configs")
