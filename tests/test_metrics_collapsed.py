"""Every metric survives a collapsed model: all probability mass on one token, or NaN logits.

A run of gradient ascent at a huge learning rate ends with losses of 1e4 nats and more;
each exp(-loss) underflows to 0, which the relative probability once divided by
(issue 19: the run failed, the session was marked failed, the model was not saved).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from test_cli import invoke
from test_metrics_evaluate import SPLITS

from tui_unlearn.metrics import tofu
from tui_unlearn.metrics.evaluate import evaluate_splits
from tui_unlearn.metrics.scoring import score_answers

ONE_TOKEN = 5


def _degenerate(mode: str):
    """A forward hook on the LM head that replaces its logits."""

    def hook(module, inputs, output):
        if mode == "nan":
            return torch.full_like(output, float("nan"))
        # All mass on one token, 2e4 nats above every other: exp(-loss) of any other answer is 0.
        out = torch.full_like(output, -1e4)
        out[..., ONE_TOKEN] = 1e4
        return out

    return hook


@pytest.fixture(params=["one_token", "nan"])
def collapsed(request, lively):
    model, tokenizer = lively
    handle = model.lm_head.register_forward_hook(_degenerate(request.param))
    yield request.param, model, tokenizer
    handle.remove()


def test_relative_probability_of_underflowing_losses():
    # Every exp(-loss) is 0.0 in float64: the ratio is still the softmax of the minus losses.
    assert tofu.relative_probability(2e4, [2e4, 2e4, 2e4]) == pytest.approx(0.25)
    assert tofu.relative_probability(1e4, [2e4]) == pytest.approx(1.0)
    assert tofu.relative_probability(2e4, [1e4, math.inf]) == pytest.approx(0.0)
    assert math.isnan(tofu.relative_probability(math.nan, [1.0]))
    assert math.isnan(tofu.relative_probability(math.inf, [math.inf]))
    # and it is the same number as before on ordinary losses
    p = np.exp(-np.array([0.5, 1.0, 2.0]))
    assert tofu.relative_probability(0.5, [1.0, 2.0]) == pytest.approx(p[0] / p.sum(), rel=1e-12)


def test_truth_ratio_of_a_model_sure_of_the_false_answers_is_infinite():
    assert tofu.truth_ratio(2e4, [0.0, 0.0]) == math.inf
    with np.errstate(all="raise"):  # the aggregates take an infinite (or zero) ratio quietly
        assert tofu.truth_ratio_forget_score([math.inf, 0.0, 1.0]) == pytest.approx(1 / 3)
        assert tofu.truth_ratio_retain_score([math.inf, 0.0]) == pytest.approx(0.5)


def test_scoring_a_collapsed_model(collapsed):
    mode, model, tokenizer = collapsed
    pairs = [("Where was Alia Brenn born?", "Alia Brenn was born in Port Liren."), ("", "Plain text to score.")]
    for score in score_answers(model, tokenizer, pairs, batch_size=2):
        if mode == "nan":
            assert math.isnan(score.loss)
            # NaN logits predict no token: no memorisation statistics rather than a made-up 0
            assert math.isnan(score.token_accuracy) and math.isnan(score.extraction_strength)
        else:
            assert score.loss == pytest.approx(2e4, rel=1e-3) and score.token_accuracy == 0.0


def test_every_metric_of_a_collapsed_model(collapsed):
    mode, model, tokenizer = collapsed
    out = evaluate_splits(model, tokenizer, SPLITS, max_new_tokens=4)
    json.dumps(out.examples, allow_nan=False)  # rows hold numbers or None, never NaN
    for split, aggregates in out.aggregates.items():
        assert all(not math.isnan(v) for v in aggregates.values()), split
    forget, retain = out.aggregates["forget"], out.aggregates["retain"]
    assert forget["accuracy"] == 0.0 and retain["f1"] == 0.0  # generation still answered
    if mode == "one_token":
        assert forget["loss"] == pytest.approx(2e4, rel=1e-3) and forget["probability"] == 0.0
        # the answer and its three perturbations are equally (im)probable
        assert forget["relative_probability"] == pytest.approx(0.25)
        assert forget["truth_ratio"] == pytest.approx(1.0) and "mia_auc_loss" in forget
    else:
        assert "loss" not in forget and "truth_ratio" not in forget and "relative_probability" not in forget


@pytest.mark.slow
def test_a_collapsing_run_finishes_and_saves_its_model(tmp_path):
    """Issue 19's command on the bundled model: gradient ascent at lr 10 without clipping
    drives every loss past 1e5 nats; the run used to end 'run failed: ZeroDivisionError'."""
    args = ["--algorithm", "grad_ascent", "--lr", "10", "--grad-clip", "0", "--steps", "6", "--save-model", "--json"]
    # The guard, and calibration (no evaluation keeps the utility floor), would end on step 0's
    # weights: the point is to evaluate the collapse.
    args += ["--guard-general", "0", "--no-calibrate"]
    result = invoke(args, tmp_path / "s")
    assert result.exit_code in (0, 1), result.stderr  # finished, or stopped as diverged
    obj = json.loads(result.stdout)
    assert obj["status"] in ("finished", "diverged")
    after = obj["metrics"]["after"]["forget"]
    assert after["loss"] > 1e3  # it did collapse
    assert 0.0 <= after["relative_probability"] <= 1.0 and after["accuracy"] == 0.0
    assert list((tmp_path / "s").glob("*/model*")), "the unlearned model was saved"


@pytest.mark.slow
def test_a_calibrated_run_that_collapsed_ends_on_the_weights_it_started_from(tmp_path):
    """The same collapse, calibrated (the default, with the bundled oracle): no evaluation keeps
    the utility floor, so the run ends where it started instead of on the collapsed model."""
    args = ["--algorithm", "grad_ascent", "--lr", "10", "--grad-clip", "0", "--steps", "6", "--eval-every", "3"]
    result = invoke([*args, "--guard-general", "0", "--json"], tmp_path / "s")
    assert result.exit_code in (0, 1), result.stderr
    obj = json.loads(result.stdout)
    calibration = obj["calibration"]
    assert calibration["floor_missed"] is True and calibration["kept_step"] == 0 and obj["steps"] == 0
    before, after = obj["metrics"]["before"]["forget"], obj["metrics"]["after"]["forget"]
    assert after["loss"] == pytest.approx(before["loss"], rel=1e-4)  # the original's weights, evaluated
    assert "ends on the weights it started from (step 0)" in result.stderr
