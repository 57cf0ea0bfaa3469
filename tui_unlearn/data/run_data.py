"""A run's data: its forget, retain and holdout sets, loaded, cleaned and kept apart.

Forget records are removed from the retain set (training on them there would teach
back what is being unlearned) and from the holdout set (a holdout record the model was
trained on is no "never seen" baseline, so membership-inference figures over the
overlap mean nothing). Both use the same exact-or-normalised match
(``cleaning.remove_overlap``); the counts go into the report.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol


class DataSources(Protocol):
    """What ``load_run_data`` reads of a RunConfig: typed by that alone, since
    ``tui_unlearn.config`` depends on this module (its ``resolve`` goes through ``recipes.plan``)."""

    @property
    def forget(self) -> str: ...
    @property
    def retain(self) -> str | None: ...
    @property
    def holdout(self) -> str | None: ...


@dataclass
class RunData:
    """The run's records, cleaned, as lists of schema dicts."""

    forget: list[dict]
    retain: list[dict]
    holdout: list[dict]
    report: dict[str, Any]


def load_run_data(config: DataSources, stdin_text: str | None = None) -> RunData:
    """Load and clean forget/retain/holdout, removing forget records from the retain and
    holdout sets.

    ``report`` holds ``forget_format``, the record counts (``forget``, ``retain``,
    ``holdout``) and, when the set is given, ``removed_from_retain`` /
    ``removed_from_holdout``. Raises DataError for a source that cannot be loaded.
    """
    from tui_unlearn.data.loading import load_split, remove_forget_from_holdout, remove_forget_from_retain

    forget = load_split(config.forget, "forget", stdin=stdin_text)
    report: dict[str, Any] = {"forget_format": forget.detected_format}
    retain_records: list[dict] = []
    if config.retain:
        retain = load_split(config.retain, "retain", stdin=stdin_text)
        retain_records, report["removed_from_retain"] = remove_forget_from_retain(retain.records, forget.records)
    holdout_records: list[dict] = []
    if config.holdout:
        holdout = load_split(config.holdout, "holdout", stdin=stdin_text)
        holdout_records, report["removed_from_holdout"] = remove_forget_from_holdout(holdout.records, forget.records)
    report.update({"forget": len(forget.records), "retain": len(retain_records), "holdout": len(holdout_records)})
    return RunData(forget.records, retain_records, holdout_records, report)


def sample(records: list[dict], n: int, seed: int) -> list[dict]:
    """A fixed random sample of ``n`` records (all when n is 0 or larger than the set)."""
    if n <= 0 or len(records) <= n:
        return list(records)
    rng = random.Random(seed)
    return [records[i] for i in sorted(rng.sample(range(len(records)), n))]
