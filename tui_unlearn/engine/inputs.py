"""A run's inputs: its records (loaded by the data layer) and the fixed samples every evaluation uses."""

from __future__ import annotations

from typing import Any

from tui_unlearn.data.run_data import RunData, load_run_data, sample

__all__ = ["RunData", "load_run_data", "sample", "eval_splits_for"]


def eval_splits_for(config: Any, data: RunData) -> dict[str, list[dict]]:
    """The fixed samples every before/after evaluation (and the oracle's) uses."""
    splits = {"forget": sample(data.forget, config.eval_samples, config.seed)}
    if data.retain:
        splits["retain"] = sample(data.retain, config.eval_samples, config.seed + 1)
    if data.holdout:
        splits["holdout"] = sample(data.holdout, config.eval_samples, config.seed + 2)
    return splits
