#!/usr/bin/python3
"""The total-error floor of perturbed-score runs against the size of the perturbation (README,
"Learned denoisers", experiment 3). For each result (a run with "denoiser": {"type":
"perturbed", "delta": d}), the floor is the smallest total error (err_total_max, against the
data's exact flow) over its solvers at their largest NFE; beside it the model error (the
perturbed model's flow against the exact flow). Prints a markdown table and the least-squares
slope of log floor against log delta, which is 1 when the floor is proportional to delta.
--check TOL exits 1 unless |slope - 1| <= TOL.
Usage: /usr/bin/python3 scripts/error_floor.py RESULT.h5 ... [--out TABLE.md] [--check 0.1]"""
import argparse
import json
import sys

import h5py
import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+")
    parser.add_argument("--out")
    parser.add_argument("--check", type=float)
    args = parser.parse_args()
    rows = []
    for path in args.results:
        with h5py.File(path, "r") as f:
            denoiser = json.loads(f.attrs["config_json"])["denoiser"]
            if denoiser.get("type") != "perturbed":
                sys.exit(f"error_floor.py: {path}: not a perturbed-score run")
            finest = {label: g["err_total_max"][()][-1] for label, g in f["solvers"].items()}
            best = min(finest, key=finest.get)
            rows.append((denoiser["delta"], f["reference"].attrs["model_error_max"],
                         finest[best], best, path))
    rows.sort()
    deltas = np.log([r[0] for r in rows])
    floors = np.log([r[2] for r in rows])
    slope = float(np.polyfit(deltas, floors, 1)[0]) if len(rows) > 1 else float("nan")
    lines = ["| delta | model error (max) | floor: smallest total error at the largest NFE | "
             "solver | floor / delta |", "|---|---|---|---|---|"]
    for delta, model_error, floor, best, _ in rows:
        lines.append(f"| {delta:.0e} | {model_error:.3e} | {floor:.3e} | {best} | "
                     f"{floor / delta:.3f} |")
    lines.append("")
    lines.append(f"least-squares slope of log floor against log delta: {slope:.4f}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    if args.check is not None and not abs(slope - 1) <= args.check:
        print(f"FAIL: |slope - 1| = {abs(slope - 1):.3f} > {args.check}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
