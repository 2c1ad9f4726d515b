#!/usr/bin/env python3
"""A rational approximation of tanh of the gated unit's form, and its error in float.

    python3 Benchmarks/micro/tanh_fit.py DEG_P DEG_Q CLAMP

fits tanh(x) = x·P(x²)/Q(x²) on [0, CLAMP] (P of degree DEG_P in x², Q of
degree DEG_Q, Q(0) = 1) for the least largest relative error (linear programs
re-weighted by the last Q: the differential-correction iteration), prints the
coefficients, then evaluates the fit as the kernels do (clamp, Horner with
fused multiply-adds rounded to float, the quotient in float) over [-20, 20]
and near 0 against tanh in double. Eigen's form, which the kernels use:
`6 3 7.99881172180175781`. Needs numpy, scipy and mpmath.
"""
import sys

import mpmath as mp
import numpy as np
from scipy.optimize import linprog


def fit(deg_p, deg_q, clamp, points=3000, rounds=30):
    mp.mp.dps = 40
    x = np.concatenate([np.linspace(0, clamp, points), clamp * (1 - np.cos(np.linspace(0, np.pi / 2, points)))])
    x = np.unique(x)
    x = x[x > 0]
    f = np.array([float(mp.tanh(mp.mpf(v)) / mp.mpf(v)) for v in x])
    scale = clamp * clamp
    u = x * x / scale  # x² scaled to [0, 1] for the linear programs' conditioning
    vp = np.vstack([u**k for k in range(deg_p + 1)]).T
    vq = np.vstack([u**k for k in range(deg_q + 1)]).T
    n = deg_p + deg_q + 3  # p, q, and the bound t
    q_last, best = np.ones_like(u), None
    for _ in range(rounds):
        w = (f * q_last)[:, None]
        a = np.vstack([np.hstack([vp, -f[:, None] * vq, -w]), np.hstack([-vp, f[:, None] * vq, -w])])
        eq = np.zeros((1, n))
        eq[0, deg_p + 1] = 1
        cost = np.zeros(n)
        cost[-1] = 1
        r = linprog(cost, A_ub=a, b_ub=np.zeros(len(a)), A_eq=eq, b_eq=[1],
                    bounds=[(None, None)] * (n - 1) + [(0, None)], method="highs")
        p, q = r.x[:deg_p + 1], r.x[deg_p + 1:-1]
        qv = vq @ q
        if np.min(qv) <= 0:
            break
        err = np.max(np.abs((vp @ p) / qv / f - 1))
        if best is None or err < best[0]:
            best = (err, p.copy(), q.copy())
        q_last = qv
    if best is None:
        sys.exit(f"no fit of degree {deg_p} over {deg_q} on [0, {clamp}] kept Q positive")
    err, p, q = best
    return err, [p[k] / scale**k for k in range(deg_p + 1)], [q[k] / scale**k for k in range(deg_q + 1)]


def float_error(pc, qc, clamp):
    def fma(a, b, c):  # a·b is exact in double for floats; one rounding to float
        return (a.astype(np.float64) * b + c).astype(np.float32)

    xs = np.concatenate([np.linspace(-20, 20, 400001), np.logspace(-8, 0, 20001)]).astype(np.float32)
    xc = np.clip(xs, -np.float32(clamp), np.float32(clamp))
    x2 = xc * xc
    p = np.full_like(x2, np.float32(pc[-1]))
    for k in range(len(pc) - 2, -1, -1):
        p = fma(p, x2, np.float32(pc[k]))
    q = np.full_like(x2, np.float32(qc[-1]))
    for k in range(len(qc) - 2, -1, -1):
        q = fma(q, x2, np.float32(qc[k]))
    th = (p * xc) / q
    ref = np.tanh(xs.astype(np.float64))
    nonzero = ref != 0
    return np.max(np.abs(th - ref)), np.max(np.abs(th - ref)[nonzero] / np.abs(ref[nonzero]))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    deg_p, deg_q, clamp = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    err, pc, qc = fit(deg_p, deg_q, clamp)
    print(f"P (ascending powers of x²): {[float(v) for v in pc]}")
    print(f"Q (ascending powers of x²): {[float(v) for v in qc]}")
    print(f"largest relative error of the fit, in double: {err:.3g}")
    absolute, relative = float_error(pc, qc, clamp)
    print(f"in float, with the clamp, over [-20, 20] and near 0: absolute {absolute:.3g}, relative {relative:.3g}")
