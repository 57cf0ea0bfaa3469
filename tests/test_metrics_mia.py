"""Membership-inference scores, AUC and PrivLeak on hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tui_unlearn.metrics.mia import (
    auc,
    loss_score,
    min_k_plus_plus_score,
    min_k_score,
    privleak,
    zlib_entropy,
    zlib_score,
)


def test_loss_score_is_minus_the_loss():
    assert loss_score(1.5) == -1.5


def test_zlib_score_divides_the_mean_loss_by_the_compressed_length():
    assert zlib_entropy("hello hello hello") == 16  # bytes of zlib.compress at level 6
    assert zlib_score(2.0, "hello hello hello") == pytest.approx(-2.0 / 16)
    assert zlib_entropy("Alia Brenn was born in Port Liren.") == 41


def test_min_k_takes_the_lowest_fraction():
    log_probs = [-1.0, -5.0, -2.0, -4.0, -3.0]
    assert min_k_score(log_probs, 0.4) == pytest.approx(-4.5)  # -5, -4
    assert min_k_score(log_probs, 1.0) == pytest.approx(-3.0)
    assert min_k_score(log_probs, 0.1) == pytest.approx(-5.0)  # at least one token
    assert min_k_plus_plus_score([0.5, -1.0, 2.0, -3.0], 0.5) == pytest.approx(-2.0)
    assert math.isnan(min_k_score([], 0.4))


def test_auc_hand_computed_with_ties():
    # pairs (3,1) (3,2) (2,1) win, (2,2) ties: (3 + 0.5) / 4
    assert auc([3.0, 2.0], [1.0, 2.0]) == pytest.approx(0.875)
    assert auc([5, 6], [1, 2, 3]) == 1.0
    assert auc([1, 2], [5, 6]) == 0.0
    assert auc([1, 1], [1, 1, 1]) == 0.5
    assert math.isnan(auc([], [1.0]))


def test_auc_equals_the_pairwise_count():
    rng = np.random.default_rng(0)
    members = np.round(rng.normal(0.3, 1.0, 57), 1)  # rounding makes ties
    nonmembers = np.round(rng.normal(0.0, 1.0, 43), 1)
    diff = members[:, None] - nonmembers[None, :]
    expected = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size
    assert auc(members, nonmembers) == pytest.approx(expected, abs=1e-12)


def test_privleak_follows_muse():
    # MUSE's AUC is 1 - ours; PrivLeak = (AUC_model - AUC_oracle) / AUC_oracle * 100 on those.
    assert privleak(0.9, 0.5) == pytest.approx(-80.0)  # (0.1 - 0.5) / 0.5
    assert privleak(0.25, 0.5) == pytest.approx(50.0)  # over-unlearned
    assert privleak(0.5, 0.5) == 0.0
    # MUSE-News: retrained AUC 0.4772 (MUSE orientation); a target that memorised the
    # forget set (MUSE AUC 0.00095) scores about -99.8, as in the MUSE paper's Table 1.
    assert privleak(1 - 0.00095, 1 - 0.4772) == pytest.approx(-99.8, abs=0.01)
