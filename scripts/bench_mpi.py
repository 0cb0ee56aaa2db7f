#!/usr/bin/python3
"""Speed-up of a run spread over MPI ranks on this machine (README "Many machines: MPI").

Runs each sweep (default: benchmarks/mpi/reference_heavy.json and sampling_heavy.json) in one
process without mpirun, then under `mpirun -np N --oversubscribe` for each N of --ranks (one
thread per rank), checks that every result equals the one-process result (tests/compare_results.py),
and prints per run the wall time of the whole command, the speed-up over one process, and the
idle fraction of each rank from the result's schedule trace.

Usage: scripts/bench_mpi.py [--ranks 2 4] [--build build] [--out build/bench_mpi] [CONFIG ...]
"""
import argparse
import os
import pathlib
import subprocess
import time

from schedule import idle_fractions, read_trace

root = pathlib.Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--build", default="build")
    parser.add_argument("--out", default="build/bench_mpi")
    parser.add_argument("configs", nargs="*")
    args = parser.parse_args()
    configs = args.configs or [str(root / "benchmarks/mpi/reference_heavy.json"),
                               str(root / "benchmarks/mpi/sampling_heavy.json")]
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    pflow = str(root / args.build / "pflow")
    print(f"{os.cpu_count()} cores; one thread per rank; wall time of the whole command "
          "(start-up, set-up and writing included)\n")
    print("| sweep | ranks | wall s | speed-up | idle fraction per rank | same datasets |")
    print("|---|---|---|---|---|---|")
    for config in configs:
        name = pathlib.Path(config).stem
        single = out / f"{name}_1.h5"
        runs = [(1, [pflow])] + [(n, ["mpirun", "-np", str(n), "--oversubscribe", pflow])
                                 for n in args.ranks]
        base = None
        for n, launcher in runs:
            result = out / f"{name}_{n}.h5"
            start = time.perf_counter()
            subprocess.run(launcher + ["run", config, "--out", str(result), "--force",
                                       "--threads", "1", "--quiet"],
                           check=True, stdout=subprocess.DEVNULL, env=env)
            wall = time.perf_counter() - start
            base = base or wall
            same = subprocess.run(["/usr/bin/python3", str(root / "tests/compare_results.py"),
                                   str(single), str(result)], capture_output=True).returncode == 0
            idle = ", ".join(f"{x:.2f}" for _, _, x in idle_fractions(read_trace(result)))
            print(f"| {name} | {n} | {wall:.2f} | {base / wall:.2f}x | {idle} | "
                  f"{'yes' if same else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
