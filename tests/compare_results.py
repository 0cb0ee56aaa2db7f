#!/usr/bin/python3
"""Checks that two pflow result files hold bit-identical datasets and attributes, apart from
what legitimately differs between runs: the wall_s datasets and the created_utc attribute.
Usage: compare_results.py A.h5 B.h5"""
import sys

import h5py
import numpy as np

SKIP_DATASETS = {"wall_s"}
SKIP_ATTRIBUTES = {"created_utc"}
failures = []


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":  # bitwise, so NaN equals NaN and -0 differs from +0
        return a.tobytes() == b.tobytes()
    return bool(np.all(a == b))


def compare_attributes(name, a, b):
    keys = set(a.attrs) | set(b.attrs)
    for key in sorted(keys - SKIP_ATTRIBUTES):
        if key not in a.attrs or key not in b.attrs:
            failures.append(f"{name}@{key}: only in one file")
        elif not same(a.attrs[key], b.attrs[key]):
            failures.append(f"{name}@{key}: {a.attrs[key]!r} != {b.attrs[key]!r}")


def compare(name, a, b):
    compare_attributes(name or "/", a, b)
    if isinstance(a, h5py.Dataset):
        if not isinstance(b, h5py.Dataset):
            failures.append(f"{name}: dataset in one file only")
        elif name.split("/")[-1] not in SKIP_DATASETS and not same(a[()], b[()]):
            failures.append(f"{name}: values differ")
        return
    if set(a.keys()) != set(b.keys()):
        failures.append(f"{name}: members {sorted(a.keys())} != {sorted(b.keys())}")
    for key in sorted(set(a.keys()) & set(b.keys())):
        compare(f"{name}/{key}", a[key], b[key])


with h5py.File(sys.argv[1], "r") as fa, h5py.File(sys.argv[2], "r") as fb:
    compare("", fa, fb)
    n = sum(1 for _ in fa["solvers"]) if "solvers" in fa else 0
if failures:
    print("\n".join(failures[:40]))
    print(f"{len(failures)} differences")
    sys.exit(1)
print(f"identical apart from wall_s and created_utc ({n} solvers)")
