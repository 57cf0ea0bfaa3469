"""Our two-sample KS p-value (forget quality) against scipy's, which it stands in for."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy.stats import ks_2samp

from tui_unlearn.metrics.ks import exact_tail, ks_2samp_pvalue


def _scipy(a, b) -> float:
    with warnings.catch_warnings():
        # scipy falling back to its approximation (a RuntimeWarning) would make the comparison moot.
        warnings.simplefilter("error", RuntimeWarning)
        return float(ks_2samp(a, b).pvalue)


@pytest.mark.parametrize("seed", range(4))
def test_equals_scipy_on_random_samples(seed):
    rng = np.random.default_rng(seed)
    for trial in range(60):
        n1 = int(rng.integers(1, 120))
        n2 = n1 if trial % 3 == 0 else int(rng.integers(1, 120))  # TOFU's case is n1 == n2
        a = rng.normal(size=n1)
        b = rng.normal(rng.choice([0.0, 0.3, 1.0, 4.0]), size=n2)
        if trial % 4 == 0:
            a, b = np.round(a), np.round(b)  # ties within and across the samples
        assert ks_2samp_pvalue(a, b) == pytest.approx(_scipy(a, b), rel=1e-12, abs=0)


def test_tiny_p_values_keep_their_digits():
    # A model that memorised the forget set against the oracle: p far below 1e-16, where
    # 1 - P(inside) would round to 0.
    rng = np.random.default_rng(7)
    for n1, n2 in [(100, 100), (400, 400), (200, 150)]:
        a, b = rng.normal(size=n1), rng.normal(3.0, size=n2)
        expected = _scipy(a, b)
        assert 0 < expected < 1e-30
        assert ks_2samp_pvalue(a, b) == pytest.approx(expected, rel=1e-12)


def test_identical_and_disjoint_samples():
    assert ks_2samp_pvalue([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
    # Disjoint: only the two extreme orderings of C(6, 3) = 20 reach D = 1.
    assert ks_2samp_pvalue([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1, rel=1e-15)
    assert exact_tail(3, 3, 3) == pytest.approx(2 / 20, rel=1e-15)
    assert exact_tail(4, 6, 0) == 1.0
    # Infinite truth ratios (an answer whose probability underflows) sort like scipy's.
    a, b = [1.0, 2.0, math.inf, math.inf, -math.inf, 3.0, 9.0, 9.5], [math.inf, 0.5, 2.0, 2.0, 7.0]
    assert ks_2samp_pvalue(a, b) == pytest.approx(_scipy(a, b), rel=1e-12)


def test_empty_or_nan_samples_give_nan():
    assert math.isnan(ks_2samp_pvalue([], [1.0]))
    assert math.isnan(ks_2samp_pvalue([1.0, float("nan")], [1.0, 2.0]))


@pytest.mark.slow
def test_forget_quality_auc_and_rouge_do_not_import_scipy_stats():
    # Why ks.py exists, and why rouge-score loads with scipy.stats held back: that import
    # costs about 0.6 s of every run. Afterwards scipy.stats still imports as usual.
    code = (
        "import sys\n"
        "from tui_unlearn.metrics.tofu import forget_quality\n"
        "from tui_unlearn.metrics.mia import auc\n"
        "from tui_unlearn.metrics.text import rouge_l, muse_rouge_l_f1\n"
        "forget_quality([0.1, 0.5, 0.9], [0.2, 0.4])\n"
        "auc([1.0, 2.0], [0.5, 2.0])\n"
        "print(rouge_l('the dogs were running', 'a dog runs'), muse_rouge_l_f1('a b c', 'a c'))\n"
        "print('scipy.stats' in sys.modules)\n"
        "from scipy.stats import ks_2samp\n"
        "print(ks_2samp([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]).pvalue)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rouge, loaded, p = out.stdout.split("\n")[:3]
    assert rouge == "(0.6666666666666666, 0.5714285714285715) 0.8"  # stemmed: dog, run match
    assert loaded == "False"
    assert float(p) == pytest.approx(0.1)
