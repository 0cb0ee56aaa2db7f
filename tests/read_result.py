#!/usr/bin/python3
"""Reads a pflow convergence result with h5py and checks every dataset and attribute of the
documented layout (README "Results"). Usage: read_result.py RESULT.h5 N_PARTICLES DIM"""
import json
import sys

import h5py
import numpy as np

path, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
failures = []


def check(ok, what):
    print(("OK   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


with h5py.File(path, "r") as f:
    for key in ["config_json", "git_commit", "git_dirty", "pflow_version", "created_utc",
                "schema_version", "host", "compiler", "libraries"]:
        check(key in f.attrs and isinstance(f.attrs[key], str), f"root attribute {key} is a str")
    config = json.loads(f.attrs["config_json"])
    m = len(config["nfe"])
    check(f["init/x"].shape == (n, d), "/init/x is [n, d]")
    check(np.allclose(f["init/x"][0], config["init"]["points"][0]), "/init/x row 0 = first point")
    check(f["reference/x"].shape == (n, d), "/reference/x is [n, d]")
    check(isinstance(f["reference"].attrs["method"], str), "/reference@method")
    check("tolerance" in f["reference"].attrs, "/reference@tolerance")
    labels = list(f["solvers"].keys())
    check(len(labels) == len(config["solvers"]), "one group per solver")
    for label in labels:
        g = f["solvers"][label]
        for name in ["nfe", "steps", "err_max", "err_rms", "wall_s"]:
            check(g[name].shape == (m,), f"{label}/{name} is [m]")
        check(g["x"].shape == (m, n, d), f"{label}/x is [m, n, d]")
        for name in ["name", "declared_order", "fitted_order", "pairwise_orders"]:
            check(name in g.attrs, f"{label}@{name}")
        err = np.max(np.abs(g["x"][-1] - f["reference/x"][()]))
        check(abs(err - g["err_max"][-1]) <= 1e-12 * max(1.0, err),
              f"{label}: err_max[-1] recomputed from x and reference/x")
        check(bool(np.all(np.diff(g["nfe"][()]) > 0)), f"{label}: nfe increases")
if failures:
    print(f"{len(failures)} checks failed")
    sys.exit(1)
print("all checks passed")
