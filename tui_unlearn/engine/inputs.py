"""A run's inputs: its records (cleaned) and the fixed samples every evaluation uses."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


@dataclass
class RunData:
    """The run's records, cleaned, as lists of schema dicts."""

    forget: list[dict]
    retain: list[dict]
    holdout: list[dict]
    report: dict[str, Any]


def load_run_data(config: Any, stdin_text: str | None = None) -> RunData:
    """Load and clean forget/retain/holdout, removing forget records from the retain set."""
    from tui_unlearn.data.loading import load_split, remove_forget_from_retain

    forget = load_split(config.forget, "forget", stdin=stdin_text)
    report: dict[str, Any] = {"forget_format": forget.detected_format}
    retain_records: list[dict] = []
    if config.retain:
        retain = load_split(config.retain, "retain", stdin=stdin_text)
        kept, removed = remove_forget_from_retain(retain.dataset, forget.dataset)
        report["removed_from_retain"] = removed
        retain_records = kept.to_list()
    holdout_records: list[dict] = []
    if config.holdout:
        holdout_records = load_split(config.holdout, "holdout", stdin=stdin_text).dataset.to_list()
    forget_records = forget.dataset.to_list()
    report.update(
        {"forget": len(forget_records), "retain": len(retain_records), "holdout": len(holdout_records)}
    )
    return RunData(forget_records, retain_records, holdout_records, report)


def sample(records: list[dict], n: int, seed: int) -> list[dict]:
    """A fixed random sample of ``n`` records (all when n is 0 or larger than the set)."""
    if n <= 0 or len(records) <= n:
        return list(records)
    rng = random.Random(seed)
    return [records[i] for i in sorted(rng.sample(range(len(records)), n))]


def eval_splits_for(config: Any, data: RunData) -> dict[str, list[dict]]:
    """The fixed samples every before/after evaluation (and the oracle's) uses."""
    splits = {"forget": sample(data.forget, config.eval_samples, config.seed)}
    if data.retain:
        splits["retain"] = sample(data.retain, config.eval_samples, config.seed + 1)
    if data.holdout:
        splits["holdout"] = sample(data.holdout, config.eval_samples, config.seed + 2)
    return splits
