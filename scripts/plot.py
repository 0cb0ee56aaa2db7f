#!/usr/bin/python3
"""Plots a pflow result: for a convergence run, error against NFE on log-log axes, one line per
solver with its fitted order in the legend and slope triangles of the declared orders (a
stochastic run: strong and weak error lines per solver); for a work-precision run, error against
NFE and against wall time side by side; for a sample run, the sliced W2 distance to fresh data
against NFE with its floor (two data samples), beside the samples of the first solver.
Writes RESULT.png and RESULT.pdf next to the file. A run with a learned or perturbed model also
gets RESULT_split.png and .pdf: per solver its error against the model's flow (discretisation),
against the data's flow (total), the model error and the knee.

Usage: /usr/bin/python3 scripts/plot.py RESULT.h5 [--metric err_max|err_rms]
(Debian's interpreter: it has h5py and matplotlib.)
"""
import argparse
import json
import math
import os
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save(fig, result, suffix=""):
    """RESULT{suffix}.png and .pdf beside the result file (the PDF the same bytes every run)."""
    stem = os.path.splitext(result)[0] + suffix
    fig.savefig(stem + ".png", dpi=130)
    fig.savefig(stem + ".pdf", metadata={"CreationDate": None})
    print(f"wrote {stem}.png and {stem}.pdf")


def order_panel(ax, rows, ylabel, title):
    """Error against NFE per solver (label, nfe, err, declared, fitted), with slope triangles."""
    cmap = plt.get_cmap("tab20")
    for i, (label, nfe, err, declared, fitted) in enumerate(rows):
        ok = np.isfinite(err) & (err > 0)
        if not ok.any():
            continue
        fit = "n/a" if math.isnan(fitted) else f"{fitted:.2f}"
        style = "-" if i < 10 else "--"
        ax.loglog(nfe[ok], err[ok], style, marker="o", ms=3, color=cmap(i % 20),
                  label=f"{label} (order {fit}, declared {declared:.0f})")
    # One slope triangle per declared order, beside the finest level: slope -k over a factor 2.
    finite = [e[np.isfinite(e) & (e > 0)] for _, _, e, _, _ in rows]
    floor = min((e.min() for e in finite if len(e)), default=1e-6)
    x_max = max(n.max() for _, n, _, _, _ in rows)
    orders = sorted({int(d) for *_, d, _ in rows if d > 0})
    for j, k in enumerate(orders):
        x0, x1 = x_max * 1.15, x_max * 2.3
        y1 = floor * 10 ** (j * 0.9)
        y0 = y1 * 2 ** k
        ax.plot([x0, x1, x0, x0], [y0, y1, y1, y0], color="0.3", lw=0.8)
        ax.text(x0 * 0.97, (y0 * y1) ** 0.5, str(k), ha="right", va="center", fontsize=7,
                color="0.3")
    ax.set_xlabel("NFE (model evaluations)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6.5, ncol=2, loc="lower left")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result")
    parser.add_argument("--metric", default="err_max", choices=["err_max", "err_rms"])
    args = parser.parse_args()
    if not os.path.exists(args.result):
        sys.exit(f"plot.py: {args.result}: no such file")
    with h5py.File(args.result, "r") as f:
        if "solvers" not in f:
            sys.exit(f"plot.py: {args.result}: no /solvers group (not a convergence result)")
        config = json.loads(f.attrs["config_json"])
        if config.get("kind") == "sample":
            return samples(args, config, f)
        if config.get("kind") == "guidance":
            return guidance(args, config, f)
        groups = sorted(f["solvers"].keys(), key=lambda k: f["solvers"][k].attrs["index"])
        rows = []
        walls = []
        split = []  # (label, nfe, err_max, err_total_max, knee_nfe) of a learned model's run
        roundtrips = []  # kind inversion: (label, nfe, roundtrip_max, declared, fitted)
        switch_rows = []  # kind interpolation: (label, nfe, switch_error, declared, fitted)
        paths = {}  # kind interpolation: the decoded paths and their components
        if config.get("kind") == "interpolation":
            paths = {"reference": f["reference/x"][()], "components": f["reference/components"][()],
                     "switches": f["reference/switches"][()]}
        model_error = float(f["reference"].attrs.get("model_error_max", float("nan")))
        for label in groups:
            g = f["solvers"][label]
            if config.get("kind") == "stochastic":  # strong (mean-square) and weak errors
                rows.append((f"{label} strong", g["nfe"][()], g["err_rms"][()],
                             float(g.attrs["declared_order"]), float(g.attrs["fitted_order"])))
                rows.append((f"{label} weak", g["nfe"][()], g["err_weak"][()],
                             float(g.attrs["declared_weak_order"]),
                             float(g.attrs["fitted_weak_order"])))
                continue
            rows.append((label, g["nfe"][()], g[args.metric][()],
                         float(g.attrs["declared_order"]), float(g.attrs["fitted_order"])))
            if "err_total_max" in g:
                split.append((label, g["nfe"][()], g["err_max"][()], g["err_total_max"][()],
                              float(g.attrs["knee_nfe"])))
            walls.append(g["wall_s"][()])
            if "switch_error" in g:
                switch_rows.append((label, g["nfe"][()], g["switch_error"][()],
                                    float(g.attrs["declared_order"]),
                                    float(g.attrs["switch_fitted_order"])))
                paths.setdefault("solvers", []).append((label, g["nfe"][()], g["x"][()]))
            if "roundtrip_max" in g:
                roundtrips.append((label, g["nfe"][()], g["roundtrip_max"][()],
                                   float(g.attrs["declared_order"]),
                                   float(g.attrs["roundtrip_fitted_order"])))
    if split:
        error_split(args, config, split, model_error)
    if config.get("kind") == "work-precision":
        return work_precision(args, config, rows, walls)
    t = config["time"]
    title = (f"{config['name']}: {config['sde']['type']}, {t['grid']} grid, "
             f"t {t['t_start']} -> {t['t_end']}")
    if config.get("kind") == "interpolation":
        return interpolation(args, config, rows, switch_rows, paths)
    if config.get("kind") == "inversion":  # encoding error beside the round trip
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(14, 6.5))
        order_panel(ax, rows, f"{args.metric} of x_T at t_start (encoding)",
                    f"{config['name']}: encoding, t {t['t_end']} -> {t['t_start']}")
        order_panel(ax2, roundtrips, "roundtrip_max: |decode(encode(x)) - x| at t_end",
                    "round trip (decoded by the same solver)")
    else:
        fig, ax = plt.subplots(figsize=(8.5, 6.5))
        order_panel(ax, rows, "strong: RMS error, weak: max moment error, at t_end"
                    if config.get("kind") == "stochastic" else f"{args.metric} at t_end", title)
    fig.tight_layout()
    save(fig, args.result)


def mixture_density(target, xs, ys):
    """The density of a gmm or gaussian target on a grid (2-D data)."""
    if target["type"] == "gaussian":
        weights, means, covs = [1.0], [target["mean"]], [target["cov"]]
    else:
        weights, means = target["weights"], target["means"]
        covs = target.get("covs") or [np.diag(d) for d in target["diag_covs"]]
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1)
    total = np.zeros(len(pts))
    for w, m, c in zip(weights, means, covs):
        c = np.asarray(c, dtype=float)
        d = pts - np.asarray(m, dtype=float)
        q = np.einsum("ni,ij,nj->n", d, np.linalg.inv(c), d)
        total += w * np.exp(-q / 2) / (2 * np.pi * np.sqrt(np.linalg.det(c)))
    return total.reshape(xs.shape)


def interpolation(args, config, rows, switch_rows, paths):
    """Decoded-path errors and switch errors against NFE, and the decoded paths over the data."""
    t = config["time"]
    fig, (ax, ax2, ax3) = plt.subplots(1, 3, figsize=(19, 6))
    order_panel(ax, rows, f"{args.metric} of the decoded path at t_end",
                f"{config['name']}: decoding, t {t['t_start']} -> {t['t_end']}")
    order_panel(ax2, switch_rows, "switch_error: |u* - u*_ref|",
                "where the decoded path switches component")
    ref = paths["reference"]
    if ref.shape[1] == 2:
        pad = 0.8
        lo, hi = ref.min(axis=0) - pad, ref.max(axis=0) + pad
        xs, ys = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
        ax3.contour(xs, ys, mixture_density(config["target"], xs, ys), levels=8, colors="0.75",
                    linewidths=0.7)
        label, nfe, x = paths["solvers"][0]
        for k, style in ((0, ":"), (len(nfe) // 2, "--")):
            ax3.plot(x[k, :, 0], x[k, :, 1], style, marker=".", ms=3, lw=1,
                     label=f"{label} at NFE {nfe[k]}")
        cmap = plt.get_cmap("tab10")
        ax3.plot(ref[:, 0], ref[:, 1], "-", color="0.2", lw=1, label="50-digit flow")
        ax3.scatter(ref[:, 0], ref[:, 1], s=14, zorder=3,
                    c=[cmap(int(c) % 10) for c in paths["components"]])
        switches = ", ".join(f"{u:.6f}" for u in paths["switches"])
        ax3.set_title(f"decoded path (colour: component); switches at u* = {switches}",
                      fontsize=10)
        ax3.set_aspect("equal")
        ax3.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    save(fig, args.result)


def guidance(args, config, f):
    """Per scale w: class fraction, spread and sw2 of each solver at its largest NFE beside the
    tilted density's (with a network, also its RMS gap to the exact CFG flow), and the first
    solver's samples at the smallest and largest w."""
    ref = f["reference"]
    scales = ref["scales"][()]
    fig, axes = plt.subplots(1, 4, figsize=(22, 5.2))
    groups = sorted(f["solvers"].keys(), key=lambda k: f["solvers"][k].attrs["index"])
    panels = (("in_class", "tilted_in_class", "fraction of samples in the class"),
              ("spread", "tilted_spread", "spread: trace of the sample covariance"),
              ("sw2", "sw2_floor", "sw2 to the tilted density"))
    for ax, (key, tilted, title) in zip(axes, panels):
        for label in groups:
            g = f["solvers"][label]
            ax.plot(scales, g[key][()][-1], "o-", ms=3, label=f"{label}, NFE {g['nfe'][()][-1]}")
        ax.plot(scales, ref[tilted][()], "k--", lw=1,
                label="floor (two samples of it)" if key == "sw2" else "tilted density")
        if key == "sw2":  # a network's CFG: its distance from the exact CFG flow
            for label in groups:
                g = f["solvers"][label]
                if "exact_cfg_gap" in g:
                    ax.plot(scales, g["exact_cfg_gap"][()][-1], "x:", ms=4,
                            label=f"{label}: RMS gap to the exact CFG flow")
        ax.set_xlabel("guidance scale w")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    axes[2].set_yscale("log")
    if "exact_cfg_gap" in f["solvers"][groups[0]]:
        axes[2].set_title("sw2 to the tilted density; network's gap to exact CFG", fontsize=10)
    g = f["solvers"][groups[0]]
    x = g["samples"][()][-1]  # [S, n, 2] at the largest NFE
    pad = 1.0
    lo, hi = x.reshape(-1, 2).min(axis=0) - pad, x.reshape(-1, 2).max(axis=0) + pad
    xs, ys = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    axes[3].contour(xs, ys, mixture_density(config["target"], xs, ys), levels=8, colors="0.75",
                    linewidths=0.7)
    for k, colour in ((0, "tab:blue"), (len(scales) - 1, "tab:red")):
        axes[3].scatter(x[k, :, 0], x[k, :, 1], s=2, alpha=0.5, color=colour,
                        label=f"w = {scales[k]:g}")
    axes[3].set_aspect("equal")
    axes[3].set_title(f"{groups[0]} samples, class {config['guidance']['label']}", fontsize=10)
    axes[3].legend(fontsize=7, markerscale=4)
    fig.suptitle(f"{config['name']}: {config['guidance']['method']} guidance", fontsize=10)
    fig.tight_layout()
    save(fig, args.result)


def samples(args, config, f):
    """Kind sample: sw2 against NFE per solver with the floor; the data and the first solver's
    samples at its smallest and largest NFE."""
    groups = sorted(f["solvers"].keys(), key=lambda k: f["solvers"][k].attrs["index"])
    floor = float(f["data"].attrs["sw2_floor"])
    fig, (ax, sc) = plt.subplots(1, 2, figsize=(12, 5.5))
    cmap = plt.get_cmap("tab10")
    for i, label in enumerate(groups):
        g = f["solvers"][label]
        nfe, sw2 = g["nfe"][()], g["sw2"][()]
        ok = np.isfinite(sw2)
        ax.loglog(nfe[ok], sw2[ok], "-o", ms=3, color=cmap(i % 10), label=label)
    ax.axhline(floor, color="0.3", ls="--", lw=1, label=f"floor (two data samples) {floor:.2e}")
    ax.set_xlabel("NFE (model evaluations)")
    ax.set_ylabel("sliced W2 to fresh data")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    data = f["data"]["x"][()][0]  # the first of the fresh data samples, [n, d]
    ax.set_title(f"{config['name']}: {config['sde']['type']}, {config['time']['grid']} grid, "
                 f"{data.shape[0]} particles", fontsize=10)
    first = f["solvers"][groups[0]]
    d = data.shape[1]
    x = first["x"][()]  # [cells, n, D]; the data coordinates come first (CLD: positions)
    for cell, color in ((0, "tab:red"), (len(x) - 1, "tab:blue")):
        pts = x[cell][:, :d]
        sc.scatter(pts[:, 0], pts[:, 1] if d > 1 else np.zeros(len(pts)), s=2, color=color,
                   alpha=0.5, label=f"{groups[0]}, NFE {int(first['nfe'][cell])}")
    sc.scatter(data[:, 0], data[:, 1] if d > 1 else np.zeros(len(data)), s=0.5, color="black",
               alpha=0.5, zorder=3, label="fresh data")
    sc.set_aspect("equal", adjustable="datalim")
    sc.legend(fontsize=7, markerscale=4)
    sc.set_title("samples at t_end", fontsize=10)
    fig.tight_layout()
    save(fig, args.result)


def error_split(args, config, split, model_error):
    """One panel per solver: discretisation error (against the model's flow), total error
    (against the data's flow), the model error and the knee."""
    cols = min(4, len(split))
    rows_n = (len(split) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.2 * cols, 2.8 * rows_n), sharex=True,
                             sharey=True, squeeze=False)
    for ax, (label, nfe, disc, total, knee) in zip(axes.flat, split):
        ok = np.isfinite(disc) & (disc > 0)
        ax.loglog(nfe[ok], disc[ok], "-o", ms=3, color="C0", label="discretisation")
        ok = np.isfinite(total) & (total > 0)
        ax.loglog(nfe[ok], total[ok], "--s", ms=3, color="C3", label="total")
        ax.axhline(model_error, color="0.4", lw=0.9, ls=":", label="model error")
        if knee > 0:
            ax.axvline(knee, color="C2", lw=0.9, label=f"knee: NFE {knee:.0f}")
        ax.set_title(label, fontsize=7.5)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6, loc="lower left")
    for ax in axes.flat[len(split):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("NFE")
    for ax in axes[:, 0]:
        ax.set_ylabel("max error at t_end")
    fig.suptitle(f"{config['name']}: error split (model error {model_error:.2e})", fontsize=10)
    fig.tight_layout()
    save(fig, args.result, "_split")


def work_precision(args, config, rows, walls):
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5), sharey=True)
    cmap = plt.get_cmap("tab10")
    for i, ((label, nfe, err, _, _), wall) in enumerate(zip(rows, walls)):
        ok = np.isfinite(err) & (err > 0)
        order = np.argsort(nfe[ok])
        axes[0].loglog(nfe[ok][order], err[ok][order], "-o", ms=3, color=cmap(i % 10), label=label)
        axes[1].loglog(np.maximum(wall[ok][order], 1e-6), err[ok][order], "-o", ms=3,
                       color=cmap(i % 10), label=label)
    axes[0].set_xlabel("NFE (model evaluations)")
    axes[1].set_xlabel("wall time [s]")
    axes[0].set_ylabel(f"{args.metric} at t_end")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{config['name']}: work-precision ({config['sde']['type']})", fontsize=10)
    fig.tight_layout()
    save(fig, args.result)


if __name__ == "__main__":
    main()
