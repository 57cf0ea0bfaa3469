"""A run's data: its forget, retain and holdout sets, loaded and cleaned.

Forget records are removed from the retain set (training on them there would teach
back what is being unlearned), by exact or normalised match; the count goes into the
report.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui_unlearn.config import RunConfig


@dataclass
class RunData:
    """The run's records, cleaned, as lists of schema dicts."""

    forget: list[dict]
    retain: list[dict]
    holdout: list[dict]
    report: dict[str, Any]


def load_run_data(config: RunConfig, stdin_text: str | None = None) -> RunData:
    """Load and clean forget/retain/holdout, removing forget records from the retain set.

    ``report`` holds ``forget_format``, the record counts (``forget``, ``retain``,
    ``holdout``) and, when a retain set is given, ``removed_from_retain``. Raises
    DataError for a source that cannot be loaded.
    """
    from tui_unlearn.data.loading import load_split, remove_forget_from_retain

    forget = load_split(config.forget, "forget", stdin=stdin_text)
    report: dict[str, Any] = {"forget_format": forget.detected_format}
    retain_records: list[dict] = []
    if config.retain:
        retain = load_split(config.retain, "retain", stdin=stdin_text)
        retain_records, report["removed_from_retain"] = remove_forget_from_retain(retain.records, forget.records)
    holdout_records: list[dict] = []
    if config.holdout:
        holdout_records = load_split(config.holdout, "holdout", stdin=stdin_text).records
    report.update({"forget": len(forget.records), "retain": len(retain_records), "holdout": len(holdout_records)})
    return RunData(forget.records, retain_records, holdout_records, report)


def sample(records: list[dict], n: int, seed: int) -> list[dict]:
    """A fixed random sample of ``n`` records (all when n is 0 or larger than the set)."""
    if n <= 0 or len(records) <= n:
        return list(records)
    rng = random.Random(seed)
    return [records[i] for i in sorted(rng.sample(range(len(records)), n))]
