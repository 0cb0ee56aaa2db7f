#!/usr/bin/python3
"""The Python module (README "Python"). Usage: python_module_test.py BUILD_PYTHON_DIR PFLOW
TINY_CONFIG SHIPPED_RESULT OUTDIR
 1. python_model wrapping a numpy implementation of a mixture's eps gives the same final states,
    NFE and steps as pflow.analytic (same output, eps) within 1e-12 for every deterministic
    solver in the registry (a solver that refused the problem would have to refuse it for both
    models alike; none does);
 2. a model's exception comes back as itself with a note naming the solver, step and t; bad
    input raises ValueError naming the field; pflow.mlp equals the CLI's run of the same model
    file bit for bit; the exact flow map of Gaussian data agrees with a tight Bulirsch-Stoer solve;
 3. pflow.read round-trips a shipped result (every dataset equal to h5py's reading); pflow.run
    writes a result that pflow.read reads back.
"""
import json
import pathlib
import subprocess
import sys

sys.path.insert(0, sys.argv[1])
import h5py  # noqa: E402
import numpy as np  # noqa: E402

import pflow  # noqa: E402

pflow_cli, tiny, shipped, outdir = sys.argv[2], sys.argv[3], sys.argv[4], pathlib.Path(sys.argv[5])
outdir.mkdir(parents=True, exist_ok=True)
failures = []

# 1. A 2-D three-component mixture under vp-linear; its eps in numpy.
weights = np.array([0.3, 0.45, 0.25])
means = np.array([[-1.0, 0.3], [0.8, 0.8], [0.4, -1.0]])
covs = np.array([[[0.5, 0.2], [0.2, 0.35]], [[0.3, -0.1], [-0.1, 0.4]], [[0.2, 0.0], [0.0, 0.6]]])
target_config = {"type": "gmm", "weights": weights.tolist(), "means": means.tolist(),
                 "covs": covs.tolist()}
sde = pflow.make_sde({"type": "vp-linear", "beta_min": 0.1, "beta_max": 20.0}, dim=2)
target = pflow.make_target(target_config)


def mixture_eps(x, t):
    a, s = sde.alpha(t), sde.sigma(t)
    score = np.zeros_like(x)
    logs, grads = [], []
    for w, m, c in zip(weights, means, covs):
        cov = a * a * c + s * s * np.eye(2)
        p = np.linalg.inv(cov)
        r = x - a * m
        logs.append(np.log(w) - 0.5 * np.einsum("ni,ij,nj->n", r, p, r)
                    - 0.5 * np.log(np.linalg.det(2 * np.pi * cov)))
        grads.append(-r @ p)
    logs = np.array(logs)
    gamma = np.exp(logs - logs.max(axis=0))
    gamma /= gamma.sum(axis=0)
    for g, d in zip(gamma, grads):
        score += g[:, None] * d
    return -s * score


x_T = np.random.default_rng(1).standard_normal((64, 2))
grid = pflow.time_grid(sde, "logsnr", 1.0, 1e-3, 12)
exact = pflow.analytic(sde, target, output="eps")
numpy_model = pflow.python_model(mixture_eps, output="eps")
checked, refused, worst = 0, [], 0.0
for record in pflow.solvers():
    if record["stochastic"]:
        continue
    spec = {"name": record["name"]}
    if record["name"] == "abm":  # steps uniform in its variable: lambda on the logsnr grid
        spec["variable"] = "lambda"
    if record["adaptive"]:
        spec["tolerance"] = 1e-6
    try:
        a = pflow.solve(spec, sde, exact, grid, x_T)
    except ValueError as e:
        try:
            pflow.solve(spec, sde, numpy_model, grid, x_T)
            failures.append(f"{record['name']}: refused with the analytic model only ({e})")
        except ValueError:
            refused.append(record["name"])
        continue
    b = pflow.solve(spec, sde, numpy_model, grid, x_T)
    diff = float(np.abs(a.x - b.x).max())
    worst = max(worst, diff)
    if not (diff <= 1e-12 and a.nfe == b.nfe and a.steps == b.steps and a.x.shape == (64, 2)):
        failures.append(f"{record['name']}: python_model vs analytic {diff:.3g}, "
                        f"nfe {a.nfe} / {b.nfe}")
    checked += 1
print(f"1. {checked} deterministic solvers: python_model = analytic within 1e-12 "
      f"(largest {worst:.3g}); "
      f"{len(refused)} refuse this problem for both ({', '.join(refused)})")
if checked < 29:
    failures.append(f"only {checked} solvers checked")

# 2. Exceptions and bad input.


class ModelFailure(RuntimeError):
    pass


def failing(x, t):
    if t < 0.05:
        raise ModelFailure("the network broke")
    return mixture_eps(x, t)


try:
    pflow.solve("dpm-solver++-2m", sde, pflow.python_model(failing, output="eps"), grid, x_T)
    failures.append("a failing model did not raise")
except ModelFailure as e:
    note = " ".join(getattr(e, "__notes__", []))
    if not ("dpm-solver++-2m" in note and "step" in note and "t = " in note):
        failures.append(f"the model's exception lacks the solver, step and t: {note!r}")
    else:
        print(f"2. the model's exception came back as ModelFailure, noted: {note}")
for call, field in [(lambda: pflow.solve("dpm-solver++2m", sde, exact, grid, x_T), "solver"),
                    (lambda: pflow.make_sde({"type": "vp-linear", "beta_min": -1.0}), "beta_min"),
                    (lambda: pflow.solve("ddim", sde, exact, grid, x_T[:, :1]), "x"),
                    (lambda: pflow.time_grid(sde, "logsnr", 1.0, 2.0, 10), "t_")]:
    try:
        call()
        failures.append(f"no ValueError for bad {field}")
    except ValueError as e:
        if field not in str(e):
            failures.append(f"the ValueError does not name {field}: {e}")

# 2b. A model file (format 1) through pflow.mlp: bit for bit the CLI's run of the same file,
# solver, grid and initial states (vp_gmm2d_mlp_silu cut to dpm-solver++-2m at NFE 12 and 48).
root = pathlib.Path(__file__).resolve().parent.parent
config = json.loads((root / "experiments/vp_gmm2d_mlp_silu.json").read_text())
config.update(solvers=["dpm-solver++-2m"], nfe=[12, 48], fit_levels=2)
config["denoiser"]["path"] = str(root / "experiments/models/vp_gmm2d_silu.h5")
(outdir / "mlp.json").write_text(json.dumps(config))
subprocess.run([pflow_cli, "run", str(outdir / "mlp.json"), "--out", str(outdir / "mlp.h5"),
                "--force", "--quiet"], check=True, stdout=subprocess.DEVNULL)
with h5py.File(outdir / "mlp.h5", "r") as f:
    x_init, cli = f["init/x"][()], f["solvers/dpm-solver++-2m/x"][()]
network = pflow.mlp(config["denoiser"]["path"])
for level, nfe in enumerate(config["nfe"]):
    r = pflow.solve("dpm-solver++-2m", sde, network,
                    pflow.time_grid(sde, "logsnr", 1.0, 1e-3, nfe), x_init)
    if not np.array_equal(r.x, cli[level]):
        failures.append(f"pflow.mlp: {float(np.abs(r.x - cli[level]).max()):.3g} from the CLI's "
                        f"run at NFE {nfe}")
print("2b. pflow.mlp equals the CLI's run bit for bit at NFE", config["nfe"])

# 2c. The exact flow map of Gaussian data against a tight solve of its PF-ODE.
gauss = pflow.make_target({"type": "gaussian", "mean": [0.5, -1.0], "cov": [[1.0, 0.8], [0.8, 0.9]]})
mapped = gauss.exact_flow(sde, x_T, 1.0, 1e-3)
tight = pflow.solve({"name": "bulirsch-stoer", "tolerance": 1e-13}, sde, pflow.analytic(sde, gauss),
                    [1.0, 1e-3], x_T)
if not float(np.abs(mapped - tight.x).max()) <= 1e-9:
    failures.append(f"exact_flow vs Bulirsch-Stoer: {float(np.abs(mapped - tight.x).max()):.3g}")
print(f"2c. exact flow map vs Bulirsch-Stoer 1e-13: {float(np.abs(mapped - tight.x).max()):.3g}")

# 2d. numpy scalars in configs (values taken from arrays) act as the Python numbers they hold.
np_sde = pflow.make_sde({"type": "vp-linear", "beta_min": np.float64(0.1),
                         "beta_max": np.int64(20)}, dim=np.int64(2))
np_target = pflow.make_target({"type": "gmm", "weights": [np.float32(0.5), np.float64(0.5)],
                               "means": [[np.int64(-1), np.int32(0)], [np.int16(1), 0]],
                               "covs": [np.eye(2), np.eye(2)]})
plain_target = pflow.make_target({"type": "gmm", "weights": [0.5, 0.5], "means": [[-1, 0], [1, 0]],
                                  "covs": [np.eye(2).tolist()] * 2})
np_grid = pflow.time_grid(np_sde, "logsnr", 1.0, 1e-3, np.int64(8))
np_solve = pflow.solve("dpm-solver++-2m", np_sde, pflow.analytic(np_sde, np_target), np_grid, x_T)
plain_solve = pflow.solve("dpm-solver++-2m", sde, pflow.analytic(sde, plain_target),
                          pflow.time_grid(sde, "logsnr", 1.0, 1e-3, 8), x_T)
if not np.array_equal(np_solve.x, plain_solve.x):
    failures.append("numpy scalars in configs: a different solve from the plain numbers'")
try:
    pflow.make_sde({"type": "vp-linear", "beta_min": np.float64(-1.0)}, dim=2)
    failures.append("no ValueError for a negative np.float64 beta_min")
except ValueError as e:
    if "beta_min" not in str(e):
        failures.append(f"the ValueError does not name beta_min: {e}")
print("2d. numpy scalars (int16/32/64, float32/64) in configs: the same solve as plain numbers")

# 3. read and run.
result = pflow.read(shipped)
with h5py.File(shipped, "r") as f:
    def walk(group, tree, path):
        for name, obj in group.items():
            if isinstance(obj, h5py.Group):
                walk(obj, tree[name], f"{path}/{name}")
            elif not np.array_equal(obj[()], tree[name], equal_nan=obj.dtype.kind == "f"):
                failures.append(f"read: {path}/{name} differs")
    walk(f, result, "")
    if json.loads(result["attrs"]["config_json"]) != json.loads(f.attrs["config_json"]):
        failures.append("read: config_json differs")
ran = pflow.run(tiny, outdir / "tiny.h5", force=True)
if sorted(k for k in ran["solvers"] if k != "attrs") != sorted(["ddim", "dpm-solver-2", "unipc(order=2,variant=bh1)"]):
    failures.append(f"run: solvers {sorted(ran['solvers'])}")
print("3. pflow.read equals h5py on", shipped, "; pflow.run wrote and read back", outdir / "tiny.h5")

if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
print("all checks passed")
