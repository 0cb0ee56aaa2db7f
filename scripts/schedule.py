#!/usr/bin/python3
"""Load balance of pflow runs, from the schedule trace every result holds (/provenance/schedule:
phase, item, rank, start and end of each work item, on rank 0's clock).

  schedule.py report RESULT.h5 ...
      per rank: the items it ran, its busy seconds and its idle fraction, i.e. 1 - busy / (threads
      x the span from the first item's start to the last item's end).

  schedule.py simulate --ranks R [--build build] [--out DIR] [--table FILE] [CONFIG.json ...]
      runs every config (default: every experiments/*.json) in one process on one thread, timing
      the whole run; then replays each run's items on R ranks of one thread each under pflow's
      rule (rank 0 hands out the next item of the phase to whichever rank is free, in the order
      the one-process run took them: reference chunks, then the analytic flow's chunks, then cells
      most expensive first; a phase ends when its last item does). What the trace does not cover
      (reading the config, building the data, the kind's fits, writing the file; a kind without
      cells) stays serial. Prints, per config and in total, the one-process time, the simulated
      time on R ranks, and its lower bound: the serial part plus, per phase, the larger of the
      longest item and the phase's work over R.
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
        for r in range(t["ranks"]):
            mine = t["rank"] == r
            busy = float((t["end_s"][mine] - t["start_s"][mine]).sum())
            idle = 1 - busy / (t["threads"] * span) if span > 0 else 0.0
            print(f"| {r} | {int(mine.sum())} | {busy:.3f} | {idle:.3f} |")


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


def simulate(args):
    root = pathlib.Path(__file__).resolve().parent.parent
    configs = [pathlib.Path(c) for c in args.configs] or sorted((root / "experiments").glob("*.json"))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for config in configs:
        name = json.loads(config.read_text())["name"]
        result = out / f"{name}.h5"
        start = time.perf_counter()
        subprocess.run([str(root / args.build / "pflow"), "run", str(config), "--out", str(result),
                        "--force", "--threads", "1", "--quiet"], check=True,
                       stdout=subprocess.DEVNULL)
        total = time.perf_counter() - start
        t = read_trace(result)
        serial, phases = total, []
        if t is not None and len(t["rank"]):
            for p in range(len(PHASES)):
                mine = t["phase"] == p
                order = np.argsort(t["start_s"][mine], kind="stable")  # hand-out order
                d = (t["end_s"][mine] - t["start_s"][mine])[order]
                if len(d):
                    phases.append(d)
                    serial -= float(d.sum())
        serial = max(serial, 0.0)
        simulated = serial + sum(list_schedule(d, args.ranks) for d in phases)
        bound = serial + sum(max(float(d.max()), float(d.sum()) / args.ranks) for d in phases)
        longest = max((float(d.max()) for d in phases), default=0.0)
        rows.append((name, sum(len(d) for d in phases), total, serial, longest, simulated, bound))
        print(f"{name}: {total:.2f} s on one process", file=sys.stderr)
    lines = [f"Simulated schedule of every shipped config on {args.ranks} ranks of one thread "
             f"(scripts/schedule.py simulate --ranks {args.ranks}); seconds, measured on one "
             "process and one thread.", "",
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
