"""The names of a run's evaluations, as events, summaries and examples write them.

Below the config and the events, so the engine, the analysis and the TUI name a phase the
same way without importing each other.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """When an evaluation ran. Equal to the plain strings in summary.json (the keys of
    ``metrics`` and ``field_metrics``), in examples.jsonl's ``phase`` and in the events."""

    BEFORE = "before"  # the original model, step 0
    DURING = "during"  # every --eval-every steps of training
    AFTER = "after"  # the weights the run ends with (an eval session's only evaluation)
