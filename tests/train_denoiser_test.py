#!/usr/bin/python3
"""The training script end to end (ctest train_denoiser_..., under 30 s):
1. its alpha_t and sigma_t for every scalar SDE equal pflow's kernel (Psi(t, 0) and Sigma(t) from
   a `kernel` run) to 1e-13 relative, and its CLD Psi and Sigma (matrix exponentials) pflow's
   closed forms to 1e-12;
2. the same config trains bit-identical weights twice;
3. `pflow model` loads each trained file: pflow's forward reproduces torch's float64 outputs to
   1e-12 relative and the 50-digit forward the double one to 1e-14 (its exit status says so);
   the models cover eps / t / raw, x0 / lambda / Fourier (float32 training), score / softplus,
   v / tanh, and score models under CLD, the generic linear SDE and blurring (whose Psi and
   Sigma, from Van Loan's block exponential and the DCT, equal pflow's to 1e-12);
4. a convergence run with the model: its reference is the model's own flow, the error split is
   stored, and ddim keeps its order on the network;
5. sample runs on each data set (two-moons, checkerboard, swiss-roll): pflow's fresh data has the
   trainer's distribution (sliced W2 against numpy draws of dataset_points, RMS over the
   replicates, within 25% of the file's floor), and numpy recomputes every stored sw2 from the
   file's samples, data and directions to 1e-12;
6. a class-conditional model (label dropout): the file's `classes` and /check/label, pflow's
   forward against torch's on labelled and unlabelled check points, the labels change the
   output, CFG at w = 0 runs to the class's own states, and bad training configs exit 2 naming
   the field.
Usage: train_denoiser_test.py PFLOW WORK_DIR"""
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "scripts"))
import train_denoiser  # noqa: E402

pflow, work = sys.argv[1], os.path.join(sys.argv[2], "train_denoiser_test")
os.makedirs(work, exist_ok=True)
train = os.path.join(here, "..", "scripts", "train_denoiser.py")
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def write_json(name, obj):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
    return path


# 1. The schedules against pflow's kernel.
times = [0.001, 0.05, 0.3, 0.9]
for sde in [{"type": "vp-linear", "beta_min": 0.2, "beta_max": 15.0}, {"type": "sub-vp"},
            {"type": "vp-cosine"}, {"type": "ve"}, {"type": "edm"}, {"type": "rectified-flow"}]:
    config = write_json("kernel.json", {"name": "kernel", "kind": "kernel", "sde": sde,
                                        "target": {"type": "dirac", "point": [0.0]},
                                        "times": times})
    out = os.path.join(work, "kernel.h5")
    subprocess.run([pflow, "run", config, "--out", out, "--force", "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    with h5py.File(out, "r") as f:
        psi = f["kernel/psi"][:, 0, 0]
        var = f["kernel/sigma"][:, 0, 0]
    alpha, sigma = train_denoiser.ScalarSde(sde).alpha_sigma(np.array(times))
    err = max(np.max(np.abs(alpha / psi - 1)), np.max(np.abs(sigma ** 2 / var - 1)))
    check(err < 1e-13, f"{sde['type']}: alpha, sigma^2 equal pflow's Psi, Sigma ({err:.2e})")
    # The velocity target's weights d alpha/dt, d sigma/dt against central differences.
    schedule, ts, h = train_denoiser.ScalarSde(sde), np.array(times), 1e-6
    (a_hi, s_hi), (a_lo, s_lo) = schedule.alpha_sigma(ts + h), schedule.alpha_sigma(ts - h)
    dalpha, dsigma = schedule.rates(ts)
    err = max(np.max(np.abs(dalpha - (a_hi - a_lo) / (2 * h)) / np.maximum(1, np.abs(dalpha))),
              np.max(np.abs(dsigma - (s_hi - s_lo) / (2 * h)) / np.maximum(1, np.abs(dsigma))))
    check(err < 1e-6, f"{sde['type']}: d alpha/dt, d sigma/dt by central differences ({err:.1e})")

config = write_json("kernel.json", {"name": "kernel", "kind": "kernel",
                                    "sde": {"type": "cld", "beta": 4.0, "M": 0.25, "gamma": 0.04},
                                    "target": {"type": "dirac", "point": [0.0]}, "times": times})
out = os.path.join(work, "kernel.h5")
subprocess.run([pflow, "run", config, "--out", out, "--force", "--quiet"], check=True,
               stdout=subprocess.DEVNULL)
with h5py.File(out, "r") as f:
    psi_ref, sigma_ref = f["kernel/psi"][()], f["kernel/sigma"][()]
psi, sigma = train_denoiser.CldSde({"type": "cld"}).kernel(np.array(times))
err = max(np.max(np.abs(psi - psi_ref)) / np.max(np.abs(psi_ref)),
          np.max(np.abs(sigma - sigma_ref)) / np.max(np.abs(sigma_ref)))
check(err < 1e-12, f"cld: Psi and Sigma equal pflow's closed forms ({err:.2e})")

# The generic linear SDE (Van Loan in the clock B(t)) and blurring (DCT basis), in pflow's
# ambient basis.
linear_sde = {"type": "linear", "Fbar": [[-0.5, 1.0], [-1.0, -0.5]], "Gbar": [[1.0], [0.5]],
              "beta_min": 0.5, "beta_max": 3.0, "Sigma0": [[0.1, 0.0], [0.0, 0.2]]}
blurring_sde = {"type": "blurring", "shape": [1, 2, 3], "blur_sigma_max": 2.0}
for sde, point in [(linear_sde, [0.0, 0.0]), (blurring_sde, [0.0] * 6)]:
    config = write_json("kernel.json", {"name": "kernel", "kind": "kernel", "sde": sde,
                                        "target": {"type": "dirac", "point": point},
                                        "times": times})
    subprocess.run([pflow, "run", config, "--out", out, "--force", "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    with h5py.File(out, "r") as f:
        psi_ref, sigma_ref = f["kernel/psi"][()], f["kernel/sigma"][()]
    psi, sigma = train_denoiser.make_sde(sde).kernel(np.array(times))
    err = max(np.max(np.abs(psi - psi_ref)) / np.max(np.abs(psi_ref)),
              np.max(np.abs(sigma - sigma_ref)) / np.max(np.abs(sigma_ref)))
    check(err < 1e-12, f"{sde['type']}: Psi and Sigma equal pflow's ({err:.2e})")

# torch 1.13's matrix_exp is off by up to 3e-11 at 1-norms 0.006-0.05; the trainer's shifted
# form against 40-digit mpmath, on the matrices of these SDEs and on multiples of +-I.
import mpmath  # noqa: E402

mpmath.mp.dps = 40
bases = [np.array([[-0.5, 0.0], [0.0, -0.5]]), np.array([[0.5, 0.0], [0.0, 0.5]]),
         np.array(linear_sde["Fbar"]), np.array([[0.0, 4.0], [-1.0, -4.0]])]
cases = [b * s for s in np.geomspace(1e-4, 5, 40) for b in bases]
got = train_denoiser.matrix_exp(torch.tensor(np.stack(cases))).numpy()
worst = max(np.max(np.abs(g - np.array(mpmath.expm(mpmath.matrix(c.tolist())).tolist(),
                                        dtype=float))) / max(1.0, np.max(np.abs(g)))
            for g, c in zip(got, cases))
check(worst < 1e-14, f"matrix_exp against 40-digit mpmath, 160 matrices ({worst:.1e})")

# 2. Determinism, and 3. pflow reads the files.
gmm = {"type": "gmm", "weights": [0.3, 0.45, 0.25], "means": [[-1.0, 0.3], [0.8, 0.8], [0.4, -1.0]],
       "covs": [[[0.5, 0.2], [0.2, 0.35]], [[0.6, -0.2], [-0.2, 0.3]], [[0.25, 0], [0, 0.8]]]}
tiny = {"sde": {"type": "vp-linear"}, "target": gmm,
        "model": {"width": 16, "depth": 2, "activation": "silu", "output": "eps"},
        "training": {"steps": 400, "batch": 128, "seed": 3, "ema": 0.9}}
variant = {"sde": {"type": "vp-linear"}, "target": {"type": "dataset", "name": "two-moons"},
           "model": {"width": 12, "depth": 2, "activation": "gelu", "output": "x0",
                     "time_input": "lambda",
                     "time_embedding": {"type": "fourier", "frequencies": [0.25, 1.0]}},
           "training": {"steps": 100, "batch": 64, "seed": 1, "dtype": "float32",
                        "t_draw": "lambda-uniform"}}
score = {"sde": {"type": "ve"}, "target": gmm,
         "model": {"width": 8, "depth": 1, "activation": "softplus", "output": "score"},
         "training": {"steps": 50, "batch": 32, "seed": 2, "t_min": 0.01}}
v_model = {"sde": {"type": "sub-vp"}, "target": gmm,
           "model": {"width": 8, "depth": 2, "activation": "tanh", "output": "v"},
           "training": {"steps": 50, "batch": 32, "seed": 4, "t_draw": "lambda-uniform"}}
velocity = {"sde": {"type": "rectified-flow"}, "target": gmm,
            "model": {"width": 8, "depth": 2, "activation": "silu", "output": "velocity"},
            "training": {"steps": 50, "batch": 32, "seed": 8, "t_max": 0.999}}
cld = {"sde": {"type": "cld"}, "target": {"type": "gaussian", "mean": [0.5], "cov": [[1.0]]},
       "model": {"width": 8, "depth": 2, "activation": "silu", "output": "score"},
       "training": {"steps": 50, "batch": 32, "seed": 5}}
linear = {"sde": linear_sde, "target": {"type": "gaussian", "mean": [0.5, -0.5],
                                        "cov": [[1.0, 0.3], [0.3, 0.5]]},
          "model": {"width": 8, "depth": 2, "activation": "tanh", "output": "score"},
          "training": {"steps": 50, "batch": 32, "seed": 6}}
blurring = {"sde": blurring_sde, "target": {"type": "gaussian", "mean": [0.0] * 6,
                                            "cov": np.eye(6).tolist()},
            "model": {"width": 8, "depth": 2, "activation": "silu", "output": "score"},
            "training": {"steps": 50, "batch": 32, "seed": 7}}
models = {}
for name, config in [("a", tiny), ("b", tiny), ("variant", variant), ("score", score),
                     ("v", v_model), ("velocity", velocity), ("cld", cld), ("linear", linear),
                     ("blurring", blurring)]:
    models[name] = os.path.join(work, name + ".h5")
    subprocess.run([sys.executable, train, write_json(name + ".json", config), "--out",
                    models[name], "--quiet"], check=True)


def weights(path):
    with h5py.File(path, "r") as f:
        return [f[f"layers/{i}/{k}"][()] for i in range(len(f["layers"])) for k in ("weight", "bias")]


wa, wb = weights(models["a"]), weights(models["b"])
check(len(wa) == len(wb) and all(np.array_equal(u, v) for u, v in zip(wa, wb)),
      "the same config trains bit-identical weights twice")
for name in ("a", "variant", "score", "v", "velocity", "cld", "linear", "blurring"):
    r = subprocess.run([pflow, "model", models[name]], capture_output=True, text=True)
    print(r.stdout + r.stderr, end="")
    check(r.returncode == 0, f"pflow model {name}: forward within 1e-12 of torch, mp50 within 1e-14")

# 4. A run with the model.
run = {"name": "model_run", "kind": "convergence", "sde": {"type": "vp-linear"}, "target": gmm,
       "denoiser": {"type": "mlp", "path": "a.h5"},
       "time": {"t_start": 1.0, "t_end": 0.001, "grid": "logsnr"},
       "init": {"count": 2, "seed": 5}, "solvers": ["ddim"], "nfe": [32, 64, 128, 256]}
out = os.path.join(work, "model_run.h5")
r = subprocess.run([pflow, "run", write_json("model_run.json", run), "--out", out, "--force",
                    "--quiet"], capture_output=True, text=True)
print(r.stdout + r.stderr, end="")
check(r.returncode == 0, "a convergence run with the trained model")
if r.returncode == 0:
    with h5py.File(out, "r") as f:
        method = f["reference"].attrs["method"]
        model_error = f["reference"].attrs["model_error_max"]
        order = f["solvers/ddim"].attrs["fitted_order"]
        total = f["solvers/ddim/err_total_max"][()]
    check("model's own PF-ODE" in method, f"reference: {method}")
    check(model_error > 0 and np.all(np.isfinite(total)),
          f"model error {model_error:.3g} and total errors stored")
    check(abs(order - 1) < 0.2, f"ddim's order on the network's flow: {order:.3f}")

# 5. Sample runs on the data sets.
def sliced(x, y, theta):
    a, b = np.sort(x @ theta.T, axis=0), np.sort(y @ theta.T, axis=0)
    return np.sqrt(np.mean((a - b) ** 2))


rng = np.random.default_rng(11)
for name in train_denoiser.DATASETS:
    target = {"type": "dataset", "name": name, "noise": 0.1}
    run = {"name": "sample_" + name, "kind": "sample", "sde": {"type": "vp-linear"},
           "target": target,
           "denoiser": {"type": "mlp", "path": "variant.h5", "allow_target_mismatch": True},
           "time": {"t_start": 1.0, "t_end": 0.001, "grid": "logsnr"},
           "init": {"count": 1000, "seed": 5}, "solvers": ["ddim", "dpm-solver++-2m"],
           "nfe": [4, 8], "projections": 64, "replicates": 16}
    out = os.path.join(work, f"sample_{name}.h5")
    r = subprocess.run([pflow, "run", write_json(f"sample_{name}.json", run), "--out", out,
                        "--force", "--quiet"], capture_output=True, text=True)
    print(r.stdout + r.stderr, end="")
    check(r.returncode == 0, f"a sample run on {name}")
    if r.returncode != 0:
        continue
    with h5py.File(out, "r") as f:
        fresh, theta = f["data/x"][()], f["data/directions"][()]
        floor = f["data"].attrs["sw2_floor"]
        worst = 0.0
        for label in f["solvers"]:
            g = f["solvers"][label]
            for cell, stored in enumerate(g["sw2"][()]):
                d = np.sqrt(np.mean([sliced(g["x"][cell], fr, theta) ** 2 for fr in fresh]))
                worst = max(worst, abs(d - stored) / stored)
    check(worst < 1e-12, f"{name}: numpy recomputes every sw2 from the file ({worst:.1e})")
    trainer = train_denoiser.Target(target)
    # Moments: pflow's 16 n points against as many of the trainer's, within 4 standard errors
    # of the difference (means and second moments per coordinate).
    ours = fresh.reshape(-1, 2)
    theirs = trainer.sample(len(ours), rng)
    worst_z = 0.0
    for a, b in ((ours, theirs), (ours ** 2, theirs ** 2)):
        se = np.sqrt(a.var(axis=0) / len(a) + b.var(axis=0) / len(b))
        worst_z = max(worst_z, float(np.max(np.abs(a.mean(axis=0) - b.mean(axis=0)) / se)))
    check(worst_z < 4, f"{name}: means and second moments equal the trainer's "
          f"(largest deviation {worst_z:.2f} standard errors)")
    against = np.sqrt(np.mean([sliced(fr, trainer.sample(len(fr), rng), theta) ** 2
                               for fr in fresh]))
    check(abs(against / floor - 1) < 0.25,
          f"{name}: pflow's data against the trainer's: sw2 {against:.3e}, floor {floor:.3e}")
# 6. A class-conditional model.
labelled = dict(gmm, labels=[1, 0][:len(gmm["weights"])] + [0] * (len(gmm["weights"]) - 2))
conditional = {"sde": {"type": "vp-linear"}, "target": labelled,
               "model": {"width": 8, "depth": 2, "activation": "silu", "conditional": True},
               "training": {"steps": 60, "batch": 32, "seed": 3, "label_dropout": 0.3}}
path = os.path.join(work, "conditional.h5")
subprocess.run([sys.executable, train, write_json("conditional.json", conditional), "--out", path,
                "--quiet"], check=True)
with h5py.File(path, "r") as f:
    classes = int(f.attrs["classes"])
    check_labels = f["check/label"][()]
    first = f["layers/0/weight"][()]
check(classes == 2 and first.shape[1] == 2 + 1 + 2,
      f"classes = {classes}, first layer {first.shape}: [x; t; one-hot]")
check(set(check_labels) == {-1.0, 0.0, 1.0}, f"check labels {sorted(set(check_labels))}")
r = subprocess.run([pflow, "model", path], capture_output=True, text=True)
print(r.stdout + r.stderr, end="")
check(r.returncode == 0 and "class-conditional: 2" in r.stdout,
      "pflow model: the conditional forward within 1e-12 of torch on every check point")
runs = {}
for name, denoiser in [("class0", {"type": "mlp", "path": "conditional.h5", "label": 0}),
                       ("class1", {"type": "mlp", "path": "conditional.h5", "label": 1}),
                       ("cfg0", {"type": "guided", "path": "conditional.h5", "label": 1,
                                 "scale": 0.0})]:
    run = {"name": name, "kind": "convergence", "sde": {"type": "vp-linear"}, "target": labelled,
           "denoiser": denoiser, "time": {"t_start": 1.0, "t_end": 0.001, "grid": "logsnr"},
           "init": {"count": 1, "seed": 5}, "solvers": ["ddim"], "nfe": [8, 16]}
    out = os.path.join(work, name + ".h5")
    r = subprocess.run([pflow, "run", write_json(name + ".json", run), "--out", out, "--force",
                        "--quiet"], capture_output=True, text=True)
    print(r.stdout + r.stderr, end="")
    check(r.returncode == 0, f"a run of the conditional model ({name})")
    if r.returncode == 0:
        with h5py.File(out, "r") as f:
            runs[name] = f["solvers/ddim/x"][()]
if len(runs) == 3:
    check(np.abs(runs["class0"] - runs["class1"]).max() > 1e-6,
          "the label changes the flow (class 0 against class 1)")
    check(np.array_equal(runs["cfg0"], runs["class1"]), "CFG at w = 0 is the class-1 network")
for name, config, fragment in [
        ("no_labels", dict(conditional, target=gmm), "model.conditional = true: needs a gmm"),
        ("dropout_unconditional", dict(tiny, training=dict(tiny["training"], label_dropout=0.2)),
         "training.label_dropout = 0.2: applies to class-conditional models only"),
        ("dropout_one", dict(conditional, training=dict(conditional["training"],
                                                         label_dropout=1.0)),
         "training.label_dropout = 1.0: must be in (0, 1)"),
        ("bad_labels", dict(conditional, target=dict(gmm, labels=[0])), "target.labels = [0]")]:
    r = subprocess.run([sys.executable, train, write_json(name + ".json", config), "--out",
                        os.path.join(work, name + ".h5"), "--quiet"], capture_output=True,
                       text=True)
    check(r.returncode == 2 and fragment in r.stderr, f"{name}: exit {r.returncode}, "
          f"{r.stderr.strip()}")
print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
