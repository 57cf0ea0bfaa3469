"""A stand-in for a run's training state (a two-layer model, AdamW, a LambdaLR schedule) that
``engine.checkpoint`` can save and load without a language model or a session: checkpoints
can then be damaged and loaded in milliseconds."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

STEPS = 8


def fake_run(folder: Path, seed: int = 0, done: int = 3, steps: int = STEPS) -> SimpleNamespace:
    """A context after ``done`` optimizer steps, whose session folder is ``folder``."""
    import torch

    from tui_unlearn.config import RunConfig, resolve

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    for _ in range(done):
        model(torch.randn(2, 4)).square().sum().backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    return SimpleNamespace(
        accelerator=SimpleNamespace(unwrap_model=lambda m: m, device=torch.device("cpu")),
        loop=SimpleNamespace(model=model, optimizer=optimizer, scheduler=scheduler, steps_done=0),
        session=SimpleNamespace(path=folder),
        config=resolve(RunConfig(steps=steps)),
        done=done,
        last_losses={"loss": 0.5},
        is_main=True,
        wait_for_everyone=lambda: None,
    )


def weights_of(ctx: SimpleNamespace) -> dict:
    return {name: p.detach().clone() for name, p in ctx.loop.model.named_parameters()}
