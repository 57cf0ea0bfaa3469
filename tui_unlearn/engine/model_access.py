"""The trained model as evaluation sees it, and decisions every process of a run takes together.

Below the phases, calibration and the guard, which all ask both.
"""

from __future__ import annotations

from typing import Any

from tui_unlearn.engine.context import RunContext


def evaluation_model(ctx: RunContext) -> Any:
    """The trained model as evaluation should call it: unwrapped (no DDP collectives)."""
    if ctx.loop is not None:
        return ctx.accelerator.unwrap_model(ctx.loop.model)
    return ctx.model if ctx.model is not None else ctx.loaded.model


def any_process(ctx: RunContext, local: bool) -> bool:
    """True when ``local`` is true on any process: decisions every process must take together
    (stop now, checkpoint now) are agreed on, or a collective would wait forever."""
    acc = ctx.accelerator
    if acc is None or acc.num_processes == 1:
        return bool(local)
    import torch

    flag = acc.reduce(torch.tensor([1.0 if local else 0.0], device=acc.device), reduction="sum")
    return bool(flag.item() > 0)
