"""Metrics: pure functions (``text``, ``tofu``, ``mia``), batched model work
(``generation``, ``scoring``) and the one entry point the engine calls (``evaluate``).

Importing this package does not import torch; the model-facing functions do on first use.
"""

from tui_unlearn.metrics.evaluate import (
    EvalResult,
    evaluate_splits,
    forget_quality_from,
    model_utility_from,
)
from tui_unlearn.metrics.tofu import forget_quality, model_utility

__all__ = [
    "EvalResult",
    "evaluate_splits",
    "forget_quality",
    "forget_quality_from",
    "model_utility",
    "model_utility_from",
]
