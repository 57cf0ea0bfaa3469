"""Membership-inference scores and their AUC, forget set (members) vs holdout (non-members).

Every score is oriented so that **higher means "more likely a member"** (seen in
training), and ``auc`` is the usual ROC AUC of members against non-members: 1 when the
attack tells the forget set apart perfectly, 0.5 when it cannot (what a retain-only
model should give). Open-unlearning writes its scores the other way round (e.g. loss,
-mean of the lowest log-probs) and labels the holdout set positive; the two flips cancel,
so its AUCs equal ours. MUSE reports 1 - AUC; see ``privleak``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence

import numpy as np


def loss_score(loss: float) -> float:
    """LOSS attack: minus the mean NLL per answer token."""
    return -float(loss)


def zlib_entropy(text: str) -> int:
    """Length in bytes of the zlib-compressed UTF-8 text (default compression level)."""
    return len(zlib.compress(text.encode("utf-8")))


def zlib_score(loss: float, text: str) -> float:
    """zlib attack: -(mean NLL per token) / zlib_entropy(text).

    As open-unlearning and Carlini et al. (2021) define it: the *mean* token loss (log
    perplexity), not the summed one, over the compressed length of the scored text.
    """
    return -float(loss) / zlib_entropy(text)


def _lowest_mean(values: Sequence[float], k: float) -> float:
    v = np.sort(np.asarray(values, dtype=np.float64))
    if v.size == 0:
        return float("nan")
    # At least one token, as open-unlearning does (MUSE's int(n*k) can be 0 on short texts).
    return float(v[: max(1, int(v.size * k))].mean())


def min_k_score(token_log_probs: Sequence[float], k: float = 0.4) -> float:
    """Min-K% Prob: mean of the lowest fraction ``k`` of the token log-probabilities."""
    return _lowest_mean(token_log_probs, k)


def min_k_plus_plus_score(token_pp_scores: Sequence[float], k: float = 0.4) -> float:
    """Min-K%++: mean of the lowest fraction ``k`` of the per-token normalised scores
    (log p(x_t) - mu_t) / sigma_t (see ``scoring.AnswerScore.min_k_pp_scores``)."""
    return _lowest_mean(token_pp_scores, k)


def auc(member_scores: Iterable[float], nonmember_scores: Iterable[float]) -> float:
    """P(member score > non-member score) + P(equal) / 2: the Mann-Whitney U over n1 * n2.

    Equals the area under the ROC curve (what ``sklearn.metrics.roc_auc_score`` gives
    with members labelled 1). NaN when either side is empty or holds a NaN.
    """
    m = np.asarray(list(member_scores), dtype=np.float64)
    n = np.sort(np.asarray(list(nonmember_scores), dtype=np.float64))
    if m.size == 0 or n.size == 0 or np.isnan(m).any() or np.isnan(n).any():
        return float("nan")
    # U counts, for each member, the non-members below it plus half of those equal to it:
    # the rank-sum form without ranking (and without importing scipy.stats, about a second).
    below = np.searchsorted(n, m, side="left")
    equal = np.searchsorted(n, m, side="right") - below
    u = below.sum() + 0.5 * equal.sum()
    return float(u / (m.size * n.size))


def privleak(auc_model: float, auc_oracle: float) -> float:
    """MUSE's PrivLeak (percent): relative change of the MIA AUC from the retain-only oracle.

    Takes AUCs as ``auc`` returns them (members = forget set scored higher = 1). MUSE
    computes its AUC the other way round (forget set labelled 0 against the holdout set
    with score -Min-40%), i.e. ``1 - auc``, and reports
    (AUC_model - AUC_retrain) / AUC_retrain * 100 on those; this function does the same, so
    its numbers match MUSE's tables: about -100 for a model that memorised the forget set,
    0 for one as private as the oracle, positive for over-unlearning.
    """
    muse_model, muse_oracle = 1.0 - auc_model, 1.0 - auc_oracle
    if muse_oracle == 0 or math.isnan(muse_oracle):
        return float("nan")
    return (muse_model - muse_oracle) / muse_oracle * 100.0
