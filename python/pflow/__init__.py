"""pflow from Python (README "Python"): exact kernels and targets, pflow's verified solvers with
any Python or PyTorch model as the denoiser, experiments and their results.

    import numpy as np, pflow
    sde = pflow.make_sde({"type": "vp-linear", "beta_min": 0.1, "beta_max": 20.0}, dim=2)
    target = pflow.make_target({"type": "gaussian", "mean": [0.5, -1.0],
                                "cov": [[1.0, 0.8], [0.8, 0.9]]})
    grid = pflow.time_grid(sde, "logsnr", 1.0, 1e-3, 20)
    x = np.random.default_rng(0).standard_normal((100, 2))
    exact = pflow.solve("dpm-solver++-2m", sde, pflow.analytic(sde, target), grid, x)
    own = pflow.solve("dpm-solver++-2m", sde,
                      pflow.python_model(lambda x, t: target.eps(sde, x, t), output="eps"), grid, x)

Arrays are numpy float64 with particles as rows ([n, D]). Bad input raises ValueError naming the
field; a Python model's exception comes back as itself, with a note giving the solver, step and t.
"""
import os

import numpy as np

from ._core import (Model, Sde, Solved, Target, analytic, make_sde, make_target, mlp,  # noqa: F401
                    python_model, solve, solvers, time_grid)
from . import _core

__all__ = ["make_sde", "make_target", "time_grid", "solve", "solvers", "analytic",
           "python_model", "mlp", "run", "read"]


def read(path):
    """A result file as plain Python: {"attrs": {...}, name: dataset (numpy) or group (dict)},
    with the names of the HDF5 layout (README "Results")."""
    import h5py

    def node(obj):
        out = {"attrs": {k: _plain(v) for k, v in obj.attrs.items()}}
        for name, child in obj.items():
            out[name] = node(child) if isinstance(child, h5py.Group) else child[()]
        return out

    with h5py.File(path, "r") as f:
        return node(f)


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO":
        return [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def run(config, out, threads=1, force=False):
    """Runs an experiment (a config dict or the path of a JSON file), writes its result to `out`
    and returns it as read(out)."""
    _core.run_config(os.fspath(config) if isinstance(config, os.PathLike) else config,
                     os.fspath(out), threads, force)
    return read(out)
