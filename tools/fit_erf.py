#!/usr/bin/env python3
"""fit_erf.py — the coefficients of core/ops_vec.h's verf: erf(x) ~ x P(x^2) / Q(x^2)
on |x| <= 3.925 (beyond it erf rounds to +-1 in float), P and Q of degree 5, Q(0) = 1.

Linearised least squares (x P(t) - erf(x) Q(t) = 0, divided by the previous Q:
Sanathanan-Koerner) with Lawson reweighting toward the minimax error, on 20,000
Chebyshev-spaced points, in double precision. Prints the coefficients and the
largest error in double and when P and Q are evaluated by Horner in float32.
Needs python3-torch (Debian); a tool, not part of the build.

    python3 tools/fit_erf.py
"""
import math

import torch

torch.set_default_dtype(torch.float64)
C, N, DP, DQ, ITERS = 3.925, 20000, 5, 5, 30

u = torch.linspace(0, math.pi, N)[1:]
x = (1 - torch.cos(u)) / 2 * C
y = torch.special.erf(x)
t = x * x

Qprev, lw, best = torch.ones_like(x), torch.ones_like(x), None
for _ in range(ITERS):
    cols = [x * t**i for i in range(DP + 1)] + [-y * t**j for j in range(1, DQ + 1)]
    A = torch.stack(cols, 1) / Qprev[:, None] * lw[:, None]
    sol = torch.linalg.lstsq(A, (y / Qprev * lw)[:, None], driver="gelsd").solution[:, 0]
    p, q = sol[: DP + 1], torch.cat([torch.ones(1), sol[DP + 1 :]])
    P = sum(p[i] * t**i for i in range(DP + 1))
    Q = sum(q[j] * t**j for j in range(DQ + 1))
    err = x * P / Q - y
    if best is None or err.abs().max() < best[0]:
        best = (err.abs().max().item(), p.clone(), q.clone())
    Qprev = Q
    lw = lw * (err.abs() / err.abs().mean()) ** 0.5
    lw = lw / lw.mean()

m, p, q = best
xf, pf, qf = x.float(), p.float(), q.float()
tf = xf * xf
P, Q = pf[-1].expand_as(tf).clone(), qf[-1].expand_as(tf).clone()
for i in range(DP - 1, -1, -1):
    P = P * tf + pf[i]
for j in range(DQ - 1, -1, -1):
    Q = Q * tf + qf[j]
ef = ((xf * P / Q).double() - y).abs().max().item()
print("max |error|: %.3g in double, %.3g evaluated in float32" % (m, ef))
print("P (t^0 first):", ", ".join("%.9g" % v for v in p.tolist()))
print("Q (t^0 first):", ", ".join("%.9g" % v for v in q.tolist()))
