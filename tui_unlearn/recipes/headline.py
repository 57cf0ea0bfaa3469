"""How the recipes' headline numbers aggregate, each with a reason when it cannot be had.

Every function reads an :class:`~tui_unlearn.metrics.evaluate.EvalResult` (per-split
aggregates and forget truth ratios), the oracle's reference (or None) and the plan
(which splits exist, and why a missing one is missing), and writes into a
:class:`~tui_unlearn.recipes.base.Headline`. They follow the published code:

- forget quality: TOFU's ``get_forget_quality`` / open-unlearning's ``ks_test``: the
  two-sample KS p-value of the forget truth ratios against the retain-only oracle's
  (basis ``truth_ratio``). Forget records without perturbed answers (a user's own QA
  data) have no truth ratio; the same KS test then runs on the per-example answer loss
  (mean NLL per answer token; basis ``answer_nll``), the statistic behind the LOSS
  membership attack, which needs nothing but the answer. open-unlearning's ``ks_test``
  takes any per-example statistic the same way. The basis follows the data (a forget
  set with perturbed answers always uses truth ratios) and is named in
  ``details["forget_quality_basis"]``: p-values of the two bases are not comparable;
- model utility: TOFU's ``get_model_utility`` / open-unlearning's ``hm_aggregate`` of
  nine numbers: on retain, real authors and world facts each, the answer probability
  (on real authors and world facts relative to the perturbed answers), ROUGE-L recall
  and the truth-ratio score max(0, 1 - R);
- retain utility: the retain third of those nine, as far as the retain records allow:
  the harmonic mean of answer probability and ROUGE-L recall, with the truth-ratio score
  when the records carry perturbed answers. It is what the utility floor and keep-best
  read where the full model utility cannot be had (no real-authors / world-facts splits);
- privacy leakage: MUSE's PrivLeak of the Min-40% AUC against the oracle's AUC, or
  against a reference AUC the user passes (open-unlearning falls back to 0.5).
"""

from __future__ import annotations

from typing import Any

from tui_unlearn.recipes.base import Headline

# (split, aggregate) pairs of TOFU's model utility, in its table's order.
UTILITY_PARTS = (
    ("retain", "probability"),
    ("retain", "rouge_l"),
    ("retain", "truth_ratio"),
    ("real_authors", "relative_probability"),
    ("real_authors", "rouge_l"),
    ("real_authors", "truth_ratio"),
    ("world_facts", "relative_probability"),
    ("world_facts", "rouge_l"),
    ("world_facts", "truth_ratio"),
)
# The retain split's part of TOFU's model utility: required parts, then the optional one.
RETAIN_UTILITY_PARTS = ("probability", "rouge_l")
RETAIN_UTILITY_OPTIONAL = ("truth_ratio",)
PRIVLEAK_AUC = "mia_auc_min_k"  # MUSE's PrivLeak uses Min-K% Prob (Min-40%)
# What forget quality's KS test compares (``Headline.details["forget_quality_basis"]``).
BASIS_TRUTH_RATIO = "truth_ratio"  # TOFU's: records with perturbed answers
BASIS_ANSWER_NLL = "answer_nll"  # records without: mean NLL per answer token


def oracle_hint(plan: Any) -> str:
    """How to give this run an oracle, in one line."""
    same = f"--recipe {plan.recipe.name}" + (f" --forget-split {plan.forget_split}" if plan.forget_split else "")
    return f"no oracle: pass --oracle with the retain-only model, or an eval session of it made with {same}"


def _split_missing(plan: Any, split: str) -> str:
    return plan.missing.get(split) or f"the {plan.recipe.name} recipe has no {split} split"


def answer_losses(result: Any, split: str) -> list[float]:
    """The per-example answer losses (mean NLL per answer token, nats) of ``split``'s rows,
    in row order; rows whose answer was truncated away (loss None) are left out."""
    return [float(row["loss"]) for row in result.examples if row.get("split") == split and row.get("loss") is not None]


def forget_quality(h: Headline, result: Any, oracle: Any, plan: Any) -> None:
    from tui_unlearn.metrics.tofu import forget_quality as ks_p_value

    if "forget" not in result.aggregates:
        h.set("forget_quality", None, f"no forget split: {_split_missing(plan, 'forget')}")
        return
    ratios = result.truth_ratios.get("forget") or []
    basis = BASIS_TRUTH_RATIO if ratios else BASIS_ANSWER_NLL
    ours = ratios or answer_losses(result, "forget")
    theirs = (oracle.forget_truth_ratios if ratios else oracle.forget_losses) if oracle is not None else []
    if not ours:
        h.set("forget_quality", None, "the forget split has no scored answers (every answer was truncated away?)")
    elif oracle is None:
        h.set("forget_quality", None, oracle_hint(plan))
    elif not theirs:
        what = "forget truth ratios" if ratios else "per-example forget answer losses"
        h.set(
            "forget_quality",
            None,
            f"the oracle ({oracle.source}) has no {what}"
            + ("" if ratios else ": make its eval session again with this version, or pass the oracle model"),
        )
    else:
        h.set("forget_quality", ks_p_value(ours, theirs), "the KS test failed")
        h.details["forget_quality_basis"] = basis


def model_utility(h: Headline, result: Any, plan: Any) -> None:
    from tui_unlearn.metrics.tofu import model_utility as harmonic_mean
    from tui_unlearn.recipes.plan import missing_text

    parts: dict[str, float] = {}
    missing: dict[str, list[str]] = {}
    for split, metric in UTILITY_PARTS:
        value = result.aggregates.get(split, {}).get(metric)
        if value is None:
            missing.setdefault(split, []).append(metric)
        else:
            parts[f"{split}.{metric}"] = float(value)
    h.details["model_utility_parts"] = parts
    if not missing:
        h.set("model_utility", harmonic_mean(list(parts.values())), "a utility part is not a number")
        return
    instead = "; retain_utility stands in for it" if h.values.get("retain_utility") is not None else ""
    why = [
        f"{split} {'/'.join(metrics)} ({_part_hint(metrics)})"
        for split, metrics in missing.items()
        if split in result.aggregates
    ]
    absent = {split: _split_missing(plan, split) for split in missing if split not in result.aggregates}
    if absent:  # splits that share a reason say it once (the forget set's path is in it)
        why.append(missing_text(absent, brackets=True))
    h.set("model_utility", None, "TOFU's model utility needs nine numbers; missing: " + "; ".join(why) + instead)


def retain_utility(h: Headline, result: Any, plan: Any) -> None:
    """The retain split's part of model utility (see the module docstring)."""
    from tui_unlearn.metrics.tofu import model_utility as harmonic_mean

    if "retain" not in result.aggregates:
        h.set("retain_utility", None, f"no retain split: {_split_missing(plan, 'retain')}")
        return
    retain = result.aggregates["retain"]
    lacking = [m for m in RETAIN_UTILITY_PARTS if retain.get(m) is None]
    if lacking:
        h.set("retain_utility", None, f"the retain split has no {'/'.join(lacking)} ({_part_hint(lacking)})")
        return
    parts = {
        m: float(retain[m]) for m in (*RETAIN_UTILITY_PARTS, *RETAIN_UTILITY_OPTIONAL) if retain.get(m) is not None
    }
    h.details["retain_utility_parts"] = {f"retain.{m}": v for m, v in parts.items()}
    h.set("retain_utility", harmonic_mean(list(parts.values())), "a retain utility part is not a number")


def _part_hint(metrics: list[str]) -> str:
    if "rouge_l" in metrics and len(metrics) == 1:
        return "the split was evaluated without generation"
    if "probability" in metrics:
        return "no answer could be scored"
    return "its records need perturbed answers"


def privleak(h: Headline, result: Any, oracle: Any, plan: Any) -> None:
    from tui_unlearn.metrics.mia import privleak as relative_change

    forget = result.aggregates.get("forget", {})
    auc = forget.get(PRIVLEAK_AUC)
    if auc is None:
        where = "holdout" if "holdout" not in result.aggregates else "forget"
        h.set(
            "mia_auc",
            None,
            f"no forget-vs-holdout membership AUC: {_split_missing(plan, where)}"
            if where not in result.aggregates
            else "no forget-vs-holdout membership AUC",
        )
        h.set("privleak", None, h.reasons["mia_auc"])
        return
    h.set("mia_auc", auc)
    if oracle is not None and oracle.mia_auc is not None:
        h.set("privleak", relative_change(auc, oracle.mia_auc), "the oracle's AUC is 1: PrivLeak divides by 1 - AUC")
    elif plan.privleak_reference_auc is not None:
        # The user's value is in MUSE's convention (forget labelled 0): ours is 1 - it.
        h.set(
            "privleak",
            relative_change(auc, 1.0 - plan.privleak_reference_auc),
            "a reference AUC of 0 leaves PrivLeak undefined",
        )
        h.details["privleak_reference"] = f"--privleak-reference-auc {plan.privleak_reference_auc:g}"
    elif oracle is not None:
        h.set("privleak", None, f"the oracle ({oracle.source}) has no forget-vs-holdout Min-K% AUC")
    else:
        h.set(
            "privleak",
            None,
            oracle_hint(plan) + " (or --privleak-reference-auc: the retrained model's AUC as MUSE reports it)",
        )


def split_metric(h: Headline, key: str, result: Any, plan: Any, split: str, metric: str) -> None:
    """A headline that is one split aggregate (MUSE's VerbMem, WMDP's accuracy)."""
    if split not in result.aggregates:
        h.set(key, None, f"no {split} split: {_split_missing(plan, split)}")
        return
    value = result.aggregates[split].get(metric)
    h.set(key, value, f"no {metric} on the {split} split (no records, or evaluated without generation)")


def tofu_headline(result: Any, oracle: Any, plan: Any) -> Headline:
    """TOFU's headline (the tofu and bundled recipes): forget quality, model utility (and
    its retain part, retain utility), privacy leakage and the forget-vs-holdout Min-K% AUC."""
    h = Headline()
    forget_quality(h, result, oracle, plan)
    retain_utility(h, result, plan)
    model_utility(h, result, plan)
    privleak(h, result, oracle, plan)
    return h
