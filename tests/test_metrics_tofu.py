"""TOFU field metrics: hand-computed values, then the TOFU authors' published figures
recomputed from their own per-example inputs (tests/data/tofu_legacy_eval.json, see its
``_about``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tui_unlearn.metrics.tofu import (
    aggregate_truth_ratio,
    forget_quality,
    model_utility,
    probability,
    relative_probability,
    truth_ratio,
    truth_ratio_forget_score,
    truth_ratio_retain_score,
)

LEGACY = json.loads((Path(__file__).parent / "data" / "tofu_legacy_eval.json").read_text())


# ---- hand-computed -------------------------------------------------------------------


def test_probability_is_exp_of_minus_mean_nll():
    assert probability(0.0) == 1.0
    assert probability(math.log(2)) == pytest.approx(0.5)
    np.testing.assert_allclose(probability([0.0, math.log(4)]), [1.0, 0.25])


def test_truth_ratio_is_geometric_mean_of_perturbed_over_paraphrased():
    # p(paraphrased) = e^-1; perturbed e^-2, e^-4 -> geometric mean e^-3; ratio e^-2
    assert truth_ratio(1.0, [2.0, 4.0]) == pytest.approx(math.exp(-2.0))
    assert truth_ratio(3.0, [3.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        truth_ratio(1.0, [])


def test_truth_ratio_aggregates():
    # forget: mean(min(R, 1/R)) = (0.5 + 0.5 + 1) / 3
    assert truth_ratio_forget_score([0.5, 2.0, 1.0]) == pytest.approx(2 / 3)
    # other splits: mean(max(0, 1 - R)) = (0.5 + 0 + 0.75) / 3
    assert truth_ratio_retain_score([0.5, 2.0, 0.25]) == pytest.approx(1.25 / 3)
    assert aggregate_truth_ratio([0.5, 2.0], forget=True) == pytest.approx(0.5)
    assert aggregate_truth_ratio([0.5, 2.0], forget=False) == pytest.approx(0.25)
    assert math.isnan(truth_ratio_forget_score([]))


def test_relative_probability():
    # p = 1/2 against two options of 1/4 each
    assert relative_probability(math.log(2), [math.log(4), math.log(4)]) == pytest.approx(0.5)


def test_model_utility_is_the_harmonic_mean():
    assert model_utility([1.0, 0.5]) == pytest.approx(2 / 3)
    assert model_utility([0.25, 0.5, 1.0]) == pytest.approx(3 / 7)
    assert model_utility([0.9, 0.0, 0.8]) == 0.0
    assert math.isnan(model_utility([]))


def test_forget_quality_is_the_ks_p_value():
    assert forget_quality([0.1, 0.2, 0.3], [0.1, 0.2, 0.3]) == pytest.approx(1.0)
    # fully separated samples of 3 + 3: exact two-sided p = 2 / C(6, 3)
    assert forget_quality([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert math.isnan(forget_quality([], [1.0]))


# ---- the TOFU authors' per-example logs ----------------------------------------------

# (avg_paraphrased_loss, average_perturb_loss, stored truth_ratio), forget10 / retain items
TOFU_TRUTH_RATIO_ITEMS = [
    (
        2.2287230491638184,
        [3.355818271636963, 3.690197229385376, 3.719407558441162, 4.432241916656494, 2.973668098449707],
        0.2452337145805359,
    ),
    (
        3.162837505340576,
        [3.47739315032959, 3.746490001678467, 4.335355758666992, 3.214492082595825, 3.1715612411499023],
        0.6529719233512878,
    ),
    (
        1.5780802965164185,
        [1.7119972705841064, 1.9709234237670898, 1.4637751579284668, 1.7078512907028198, 1.9508448839187622],
        0.8327696919441223,
    ),
    (
        1.8391597270965576,
        [2.2241666316986084, 2.1972012519836426, 2.4150288105010986, 2.4247143268585205, 2.3406028747558594],
        0.6180518269538879,
    ),
    (
        1.6363047361373901,
        [3.532003402709961, 3.863150119781494, 4.104330539703369, 3.8501861095428467, 4.4011430740356445],
        0.09887903928756714,
    ),
    (
        3.6644949913024902,
        [3.679455280303955, 3.614773988723755, 3.5782155990600586, 3.688481330871582, 3.4043033123016357],
        1.0740634202957153,
    ),
    (
        3.4906435012817383,
        [2.7405025959014893, 2.919919490814209, 3.2527363300323486, 2.7709527015686035, 3.55146861076355],
        1.5581940412521362,
    ),
]


@pytest.mark.parametrize(("paraphrased", "perturbed", "published"), TOFU_TRUTH_RATIO_ITEMS)
def test_truth_ratio_reproduces_tofu_items(paraphrased, perturbed, published):
    assert truth_ratio(paraphrased, perturbed) == pytest.approx(published, rel=1e-6)


def _ratios(rows):
    return [truth_ratio(paraphrased, [perturbed_mean]) for paraphrased, perturbed_mean in rows]


def test_forget_quality_reproduces_tofu_full_vs_retain90():
    target = _ratios(LEGACY["forget_full"])
    oracle = _ratios(LEGACY["forget_retain90"])
    assert len(target) == len(oracle) == 300
    assert forget_quality(target, oracle) == pytest.approx(1.834e-21, rel=1e-3)


# The nine numbers of the TOFU model utility of the `full` model (reference README).
PUBLISHED_UTILITY_PARTS = {
    "retain": (0.9895, 0.9857, 0.4747),
    "real_authors": (0.4555, 0.9330, 0.5962),
    "world_facts": (0.4186, 0.8825, 0.5390),
}


def test_model_utility_of_the_nine_published_numbers():
    values = [v for parts in PUBLISHED_UTILITY_PARTS.values() for v in parts]
    assert model_utility(values) == pytest.approx(0.6227, rel=1e-3)


def _retain_parts(rows):
    probability_ = float(np.mean(probability([r[0] for r in rows])))
    rouge = float(np.mean([r[1] for r in rows]))
    truth = truth_ratio_retain_score(truth_ratio(r[2], [r[3]]) for r in rows)
    return probability_, rouge, truth


def _multiple_choice_parts(rows):
    probability_ = float(np.mean([relative_probability(r[0], r[3:]) for r in rows]))
    rouge = float(np.mean([r[1] for r in rows]))
    truth = truth_ratio_retain_score(truth_ratio(r[2], r[3:]) for r in rows)
    return probability_, rouge, truth


def test_model_utility_parts_recomputed_from_per_item_logs():
    recomputed = {
        "retain": _retain_parts(LEGACY["retain_full"]),
        "real_authors": _multiple_choice_parts(LEGACY["real_authors_full"]),
        "world_facts": _multiple_choice_parts(LEGACY["world_facts_full"]),
    }
    assert len(LEGACY["retain_full"]) == 300
    for split, published in PUBLISHED_UTILITY_PARTS.items():
        # the README rounds to 4 digits: 5e-5 absolute is at most 1.2e-4 relative here
        assert recomputed[split] == pytest.approx(published, abs=5e-5), split
    nine = [v for parts in recomputed.values() for v in parts]
    assert model_utility(nine) == pytest.approx(0.6227, rel=1e-3)
