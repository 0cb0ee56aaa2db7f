#!/usr/bin/python3
"""Load balance of pflow runs, from the schedule trace every result holds (/provenance/schedule:
phase, item, rank, start and end of each work item, on rank 0's clock).

  schedule.py report RESULT.h5 ...
      per rank: the items it ran, its busy seconds and its idle fraction, i.e. 1 - busy / (threads
      x the span from the first item's start to the last item's end).

  schedule.py simulate --ranks R [--build build] [--out DIR] [--table FILE] [CONFIG.json ...]
      the wall time of every config (default: every experiments/*.json) on R ranks of one thread,
      from measured costs, under pflow's rule: rank 0 hands out the next item of a phase to
      whichever rank is free first (reference chunks in order, then the analytic flow's chunks,
      then cells most expensive first by NFE, an adaptive cell by 6 tol^(-1/5)); a phase ends
      when its last item does. Costs: each cell's wall_s in the shipped result
      (results/NAME/NAME.h5); the reference's and the analytic flow's chunks, and the serial rest
      (reading the config, building the data, the fits, writing the file), from a run of the
      config cut to its first two NFE levels (or tolerances) in one process on one thread, timed
      whole. A kind without cells (or without a shipped result) is run whole and counted serial.
      Prints, per config and in total, the one-process time, the simulated time on R ranks and
      its lower bound: the serial part plus, per phase, the larger of the longest item and the
      phase's work over R.
"""
import argparse
import heapq
import json
import pathlib
import subprocess
import sys
import time

import h5py
import numpy as np

PHASES = ["reference", "analytic flow", "cells"]


def read_trace(path):
    with h5py.File(path, "r") as f:
        if "provenance/schedule" not in f:
            return None
        s = f["provenance/schedule"]
        trace = {k: s[k][()] for k in ("phase", "item", "rank", "start_s", "end_s")}
        trace["ranks"] = int(s.attrs["ranks"])
        trace["threads"] = int(s.attrs["threads"])
        return trace


def idle_fractions(t):
    """Per rank of a trace: (items, busy seconds, idle fraction = 1 - busy / (threads x span))."""
    span = t["end_s"].max() - t["start_s"].min()
    out = []
    for r in range(t["ranks"]):
        mine = t["rank"] == r
        busy = float((t["end_s"][mine] - t["start_s"][mine]).sum())
        out.append((int(mine.sum()), busy, 1 - busy / (t["threads"] * span) if span > 0 else 0.0))
    return out


def report(paths):
    for path in paths:
        t = read_trace(path)
        if t is None or len(t["rank"]) == 0:
            print(f"{path}: no schedule trace (a kind without cells, or every item from a checkpoint)")
            continue
        span = t["end_s"].max() - t["start_s"].min()
        print(f"{path}: {len(t['rank'])} items on {t['ranks']} rank(s) x {t['threads']} thread(s), "
              f"span {span:.3f} s (first item's start to last item's end)")
        print("| rank | items | busy s | idle fraction |")
        print("|---|---|---|---|")
        for r, (items, busy, idle) in enumerate(idle_fractions(t)):
            print(f"| {r} | {items} | {busy:.3f} | {idle:.3f} |")


def list_schedule(durations, ranks):
    """Makespan of items taken in order by whichever of `ranks` workers is free first."""
    free = [0.0] * ranks
    heapq.heapify(free)
    end = 0.0
    for d in durations:
        start = heapq.heappop(free)
        heapq.heappush(free, start + d)
        end = max(end, start + d)
    return end


def cell_costs(config, result):
    """The shipped result's cells as (wall_s, NFE-rule cost), or None without one."""
    if not result.exists():
        return None
    with h5py.File(result, "r") as f:
        if "solvers" not in f:
            return None
        cells = []
        for group in f["solvers"].values():
            wall, tol = group["wall_s"][()], group["tolerance"][()]
            for ci in range(len(wall)):
                adaptive = not np.isnan(tol[ci])
                cost = 6 * tol[ci] ** -0.2 if adaptive else config["nfe"][ci]
                cells.append((float(wall[ci]), float(cost)))
    return cells


def simulate(args):
    root = pathlib.Path(__file__).resolve().parent.parent
    paths = [pathlib.Path(c) for c in args.configs] or sorted((root / "experiments").glob("*.json"))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in paths:
        config = json.loads(path.read_text())
        name = config["name"]
        cells = cell_costs(config, root / "results" / name / f"{name}.h5")
        run = dict(config)
        if cells is not None:  # the reference and two levels: the rest of the run's costs
            for key in ("nfe", "tolerances"):
                if key in run:
                    run[key] = run[key][:2]
            if "fit_levels" in run:
                run["fit_levels"] = min(run["fit_levels"], 2)
        cut = out / f"{name}.json"
        # Relative paths in a config (a model file) are read from the config's directory.
        for key in ("denoiser",):
            if isinstance(run.get(key), dict) and "path" in run[key]:
                run[key]["path"] = str((path.parent / run[key]["path"]).resolve())
        cut.write_text(json.dumps(run))
        result = out / f"{name}.h5"
        start = time.perf_counter()
        subprocess.run([str(root / args.build / "pflow"), "run", str(cut), "--out", str(result),
                        "--force", "--threads", "1", "--quiet"], check=True,
                       stdout=subprocess.DEVNULL)
        measured = time.perf_counter() - start
        serial, phases = measured, []
        t = read_trace(result) if cells is not None else None
        if t is not None and len(t["rank"]):
            serial -= float((t["end_s"] - t["start_s"]).sum())
            for p in range(2):  # the reference's and the analytic flow's chunks
                mine = t["phase"] == p
                order = np.argsort(t["start_s"][mine], kind="stable")  # hand-out order
                d = (t["end_s"][mine] - t["start_s"][mine])[order]
                if len(d):
                    phases.append(d)
        if cells is not None:
            ordered = sorted(cells, key=lambda c: -c[1])  # most expensive first (stable)
            phases.append(np.array([w for w, _ in ordered]))
        serial = max(serial, 0.0)
        total = serial + sum(float(d.sum()) for d in phases)
        simulated = serial + sum(list_schedule(d, args.ranks) for d in phases)
        bound = serial + sum(max(float(d.max()), float(d.sum()) / args.ranks) for d in phases)
        longest = max((float(d.max()) for d in phases), default=0.0)
        rows.append((name, sum(len(d) for d in phases), total, serial, longest, simulated, bound))
        print(f"{name}: {total:.2f} s on one process", file=sys.stderr)
    lines = [f"Simulated schedule of every shipped config on {args.ranks} ranks of one thread "
             f"(`scripts/schedule.py simulate --ranks {args.ranks}`); seconds.", "",
             "| config | items | one process | serial part | longest item | "
             f"{args.ranks} ranks (simulated) | lower bound | speed-up |",
             "|---|---|---|---|---|---|---|---|"]
    for name, items, total, serial, longest, simulated, bound in rows:
        lines.append(f"| {name} | {items} | {total:.2f} | {serial:.2f} | {longest:.2f} | "
                     f"{simulated:.2f} | {bound:.2f} | {total / simulated:.1f}x |")
    total = sum(r[2] for r in rows)
    simulated = sum(r[5] for r in rows)
    bound = sum(r[6] for r in rows)
    lines.append(f"| **all, one after another** | {sum(r[1] for r in rows)} | {total:.1f} | "
                 f"{sum(r[3] for r in rows):.1f} | {max(r[4] for r in rows):.2f} | "
                 f"{simulated:.1f} | {bound:.1f} | {total / simulated:.1f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.table:
        pathlib.Path(args.table).write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report")
    r.add_argument("results", nargs="+")
    s = sub.add_parser("simulate")
    s.add_argument("--ranks", type=int, default=64)
    s.add_argument("--build", default="build")
    s.add_argument("--out", default="build/schedule")
    s.add_argument("--table")
    s.add_argument("configs", nargs="*")
    args = parser.parse_args()
    if args.command == "report":
        report(args.results)
    else:
        simulate(args)


if __name__ == "__main__":
    main()
