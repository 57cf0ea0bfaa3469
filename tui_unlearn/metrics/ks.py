"""The two-sample Kolmogorov-Smirnov test that TOFU's forget quality is built on.

``ks_2samp_pvalue`` gives the p-value ``scipy.stats.ks_2samp(a, b).pvalue`` gives (two-sided,
``method="auto"``): the exact null distribution whenever both samples have at most 10,000
values, scipy itself beyond that. It exists because importing ``scipy.stats`` costs about a
second on a 2-core machine (``python -X importtime``, measured beside torch and
transformers), which is 5 % of a default ``--batch`` run, paid by every run and every sweep
trial for one p-value of a few hundred numbers. ``tests/test_ks.py`` holds it to scipy's
answer on random, tied, tiny-p and unequal-size samples.

The exact p-value is P(D >= d) under the null hypothesis that all C(n1 + n2, n1) orderings
of the pooled sample are equally likely. An ordering is a lattice path from (0, 0) to
(n1, n2): a step in x per value of the first sample, in y per value of the second. After x
and y steps the two empirical CDFs differ by |x / n1 - y / n2|, so D >= d exactly when the
path touches a point with |x * n2 - y * n1| >= d * n1 * n2. Scaled by the gcd g, that is the
integer condition |x * (n2 / g) - y * (n1 / g)| >= h with h = round(d * lcm(n1, n2)), the same
rounding scipy applies to absorb floating error in d.

The probability is computed forward along anti-diagonals: a uniformly random path ending
at (x, y) arrived from (x - 1, y) with probability x / (x + y) and from (x, y - 1) with
probability y / (x + y), so Q(x, y), the chance that a random path to (x, y) has touched
the boundary, is 1 on the boundary and the weighted mean of its two predecessors' Q
elsewhere. Every value is a convex combination of numbers in [0, 1], so small p-values keep
their relative precision (no 1 - P(inside) cancellation) and nothing overflows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

# scipy's 'auto' takes the exact distribution up to this sample size, an asymptotic one above.
MAX_EXACT_N = 10_000


def ks_2samp_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The largest distance between the two empirical CDFs (ties counted as scipy does:
    both CDFs evaluated at every pooled value, right-continuous)."""
    a, b = np.sort(a), np.sort(b)
    pooled = np.concatenate([a, b])
    diff = np.searchsorted(a, pooled, side="right") / a.size - np.searchsorted(b, pooled, side="right") / b.size
    return float(max(diff.max(), np.clip(-diff.min(), 0.0, 1.0)))


def exact_tail(n1: int, n2: int, h: int) -> float:
    """P(a random path from (0, 0) to (n1, n2) touches |x * (n2 / g) - y * (n1 / g)| >= h),
    g = gcd(n1, n2): the exact two-sided p-value for a statistic of h / lcm(n1, n2)."""
    if h <= 0:
        return 1.0
    g = math.gcd(n1, n2)
    step_x, step_y = n2 // g, n1 // g
    # q[x] holds Q(x, s - x) for the current anti-diagonal s; x runs over the points of the
    # diagonal that lie inside the rectangle.
    q = np.zeros(1)
    for s in range(1, n1 + n2 + 1):
        first, last = max(0, s - n2), min(n1, s)  # x on diagonal s
        x = np.arange(first, last + 1)
        y = s - x
        # Padded with a zero each side, diagonal s - 1 (whose x starts at prev) gives the
        # left predecessor (x - 1, y) of x at index x - prev and the one below, (x, y - 1),
        # at x - prev + 1; the zeros stand where a predecessor leaves the rectangle, and
        # carry no weight there (x = 0 or y = 0).
        prev = max(0, s - 1 - n2)
        padded = np.concatenate(([0.0], q, [0.0]))
        q = (x * padded[first - prev : last - prev + 1] + y * padded[first - prev + 1 : last - prev + 2]) / s
        q[np.abs(x * step_x - y * step_y) >= h] = 1.0
    return float(q[-1])


def ks_2samp_pvalue(a: Iterable[float], b: Iterable[float]) -> float:
    """Two-sided two-sample KS p-value, as ``scipy.stats.ks_2samp(a, b).pvalue``; NaN when
    either sample is empty or holds a NaN (scipy's default NaN policy propagates it)."""
    x = np.asarray(list(a), dtype=np.float64)
    y = np.asarray(list(b), dtype=np.float64)
    if x.size == 0 or y.size == 0 or np.isnan(x).any() or np.isnan(y).any():
        return float("nan")
    if max(x.size, y.size) > MAX_EXACT_N:
        from scipy.stats import ks_2samp  # the asymptotic branch: scipy's own

        return float(ks_2samp(x, y).pvalue)
    d = ks_2samp_statistic(x, y)
    lcm = x.size // math.gcd(x.size, y.size) * y.size
    return min(1.0, max(0.0, exact_tail(x.size, y.size, int(round(d * lcm)))))
