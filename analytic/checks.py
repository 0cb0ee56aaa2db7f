"""Shared helpers of the analytic/ scripts: report a check, or stop the script loudly."""
import sys

import sympy as sp


def check(ok, label):
    """Print 'OK  label' or abort with a clear message (exit status 1)."""
    if not ok:
        print(f"FAIL {label}", file=sys.stderr)
        print(f"FAIL {label}")
        raise SystemExit(1)
    print(f"OK  {label}")


def is_zero(expr):
    """Symbolic zero test for a scalar or a Matrix."""
    if isinstance(expr, sp.MatrixBase):
        return all(is_zero(e) for e in expr)
    return sp.simplify(sp.expand(expr)) == 0
