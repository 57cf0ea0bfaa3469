"""TOFU's field metrics: answer probability, truth ratio, forget quality, model utility.

Pure functions over per-example losses (mean negative log-likelihood per answer token,
in nats), following the TOFU paper and open-unlearning's implementation. The tests
reproduce the TOFU authors' published per-example logs and headline figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from tui_unlearn.metrics.ks import ks_2samp_pvalue


def probability(loss):
    """Length-normalised answer probability exp(-mean NLL); works on scalars and arrays."""
    return np.exp(-np.asarray(loss, dtype=np.float64)) if np.ndim(loss) else math.exp(-loss)


def relative_probability(answer_loss: float, perturbed_losses: Sequence[float]) -> float:
    """p(answer) / (p(answer) + sum p(perturbed)) with length-normalised p = exp(-loss).

    TOFU's "probability" on the real-authors and world-facts splits, where the perturbed
    answers act as the options of a multiple-choice question. Computed as a softmax of
    the minus losses: a collapsed model's losses of 1e4 nats underflow every exp(-loss) to
    0, which the plain ratio divides by. NaN when a loss is NaN or all are infinite.
    """
    log_p = -np.asarray([answer_loss, *perturbed_losses], dtype=np.float64)
    top = log_p.max()
    if not np.isfinite(top):
        return float("nan")
    weights = np.exp(log_p - top)
    return float(weights[0] / weights.sum())


def truth_ratio(paraphrased_loss: float, perturbed_losses: Sequence[float]) -> float:
    """exp(paraphrased_loss - mean(perturbed_losses)).

    Equals the geometric mean of the perturbed answers' length-normalised probabilities
    over the paraphrased answer's: near 0 when the model prefers the true (paraphrased)
    answer, near 1 when it cannot tell true from false.
    """
    if len(perturbed_losses) == 0:
        raise ValueError("truth_ratio needs at least one perturbed answer")
    try:
        return math.exp(paraphrased_loss - float(np.mean(np.asarray(perturbed_losses, dtype=np.float64))))
    except OverflowError:
        # A collapsed model can be 1e4 nats surer of the false answers: the ratio is infinite.
        return math.inf


def truth_ratio_forget_score(ratios: Iterable[float]) -> float:
    """Mean of min(R, 1/R): 1 when true and false answers are equally likely (forgotten)."""
    r = np.asarray(list(ratios), dtype=np.float64)
    with np.errstate(divide="ignore"):  # R = 0 (a collapsed model): 1/R = inf, min(R, 1/R) = 0
        return float(np.mean(np.minimum(r, 1.0 / r))) if r.size else float("nan")


def truth_ratio_retain_score(ratios: Iterable[float]) -> float:
    """Mean of max(0, 1 - R): 1 when the true answer is far likelier than the false ones."""
    r = np.asarray(list(ratios), dtype=np.float64)
    return float(np.mean(np.maximum(0.0, 1.0 - r))) if r.size else float("nan")


def aggregate_truth_ratio(ratios: Iterable[float], *, forget: bool) -> float:
    """The split's truth-ratio score: the forget form on a forget set, else the retain form."""
    return truth_ratio_forget_score(ratios) if forget else truth_ratio_retain_score(ratios)


def forget_quality(model_truth_ratios: Iterable[float], oracle_truth_ratios: Iterable[float]) -> float:
    """p-value of the two-sample Kolmogorov-Smirnov test between the forget-set truth ratios
    of the unlearned model and of the retain-only oracle (high: indistinguishable)."""
    return ks_2samp_pvalue(model_truth_ratios, oracle_truth_ratios)


def model_utility(values: Iterable[float]) -> float:
    """Harmonic mean of the utility numbers (0 when any of them is 0 or below)."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0 or np.isnan(v).any():
        return float("nan")
    if (v <= 0).any():
        return 0.0
    return float(v.size / np.sum(1.0 / v))
