"""Checkpoints inside a session, so a killed or interrupted run can be resumed exactly.

A checkpoint holds what the next step depends on: the trained weights (the LoRA adapter
only, for LoRA runs), the optimizer's moments, the scheduler, the steps done and the
random states. The data order needs nothing: streams are a pure function of the seed and
the steps done (``streams``). Everything is safetensors or JSON (no pickle), written into
a temp folder and renamed into place, so a kill mid-write leaves the previous checkpoint.
A resumed run rebuilds what does not change from the original model (the reference, its
cached log-probabilities, the L2 anchor) and then loads the checkpoint over it.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

CHECKPOINT_DIR = "checkpoint"
TMP_PREFIX = ".checkpoint.tmp-"
WEIGHTS, OPTIMIZER, STATE = "weights.safetensors", "optimizer.safetensors", "state.json"
# Without --checkpoint-every, a run checkpoints after this much training time (and when stopped).
AUTO_EVERY_S = 300.0


def trainable_state(model: Any) -> dict[str, Any]:
    """name -> tensor of every trained parameter (all weights, or only the LoRA adapters)."""
    return {name: p.detach().contiguous().cpu() for name, p in model.named_parameters() if p.requires_grad}


def _optimizer_tensors(optimizer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors, JSON) of an optimizer state_dict: per-parameter tensors keyed "i.name"."""
    import torch

    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, Any], meta: dict[str, Any], device: Any) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        index, name = key.split(".", 1)
        # Adam's step counter stays on the CPU (torch keeps it there unless capturable).
        state.setdefault(int(index), {})[name] = tensor if name == "step" else tensor.to(device)
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(ctx: Any) -> Path | None:
    """Write the run's checkpoint into its session (main process; the others wait)."""
    import numpy as np
    import torch
    from safetensors.torch import save_file

    ctx.wait_for_everyone()
    if not ctx.is_main or ctx.session is None or ctx.loop is None:
        ctx.wait_for_everyone()
        return None
    model = ctx.accelerator.unwrap_model(ctx.loop.model)
    tmp = ctx.session.path / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
    tmp.mkdir()
    try:
        save_file(trainable_state(model), str(tmp / WEIGHTS))
        tensors, meta = _optimizer_tensors(ctx.loop.optimizer)
        rng = {"torch_cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng.update({f"torch_cuda_{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
        save_file({**tensors, **{f"rng.{k}": v for k, v in rng.items()}}, str(tmp / OPTIMIZER))
        np_state: tuple[Any, ...] = np.random.get_state(legacy=True)  # type: ignore[assignment]  # stubs say tuple or dict; legacy=True is the tuple
        state = {
            "step": ctx.done,
            "total_steps": ctx.config.steps,
            "optimizer": meta,
            "scheduler": {k: v for k, v in ctx.loop.scheduler.state_dict().items() if k != "lr_lambdas"},
            "python_random": _jsonable_random_state(random.getstate()),
            "numpy_random": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "last_losses": ctx.last_losses,
            "trainable": sorted(trainable_state(model)),
            "saved": time.time(),
        }
        (tmp / STATE).write_text(json.dumps(state), encoding="utf-8")
        final = ctx.session.path / CHECKPOINT_DIR
        if final.exists():
            old = ctx.session.path / f"{TMP_PREFIX}old-{secrets.token_hex(3)}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    ctx.wait_for_everyone()
    return final


def _jsonable_random_state(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def discard_checkpoint(session_path: Path) -> None:
    shutil.rmtree(session_path / CHECKPOINT_DIR, ignore_errors=True)


def read_checkpoint_step(session_path: Path) -> int | None:
    """Steps done according to the session's checkpoint, or None when it has none (or a broken one)."""
    try:
        state = json.loads((session_path / CHECKPOINT_DIR / STATE).read_text(encoding="utf-8"))
        step = state.get("step")
        return step if isinstance(step, int) and step >= 0 else None
    except (OSError, ValueError, AttributeError):
        return None


def load_checkpoint(ctx: Any, folder: Path) -> None:
    """Load the checkpoint in ``folder`` over the prepared model, optimizer, scheduler and RNGs."""
    import numpy as np
    import torch
    from safetensors.torch import load_file

    from tui_unlearn.errors import RunFailedError

    state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    model = ctx.accelerator.unwrap_model(ctx.loop.model)
    weights = load_file(str(folder / WEIGHTS))
    params = dict(model.named_parameters())
    missing = [name for name in weights if name not in params]
    if missing or sorted(weights) != sorted(n for n, p in params.items() if p.requires_grad):
        raise RunFailedError(
            f"the checkpoint in {folder} does not fit this run's model ({len(missing)} unknown tensors); "
            "was the model or the LoRA setting changed?"
        )
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))
    stored = load_file(str(folder / OPTIMIZER))
    rng = {k[4:]: v for k, v in stored.items() if k.startswith("rng.")}
    tensors = {k: v for k, v in stored.items() if not k.startswith("rng.")}
    ctx.loop.optimizer.load_state_dict(_optimizer_state(tensors, state["optimizer"], ctx.accelerator.device))
    scheduler_state = ctx.loop.scheduler.state_dict()
    scheduler_state.update(state["scheduler"])
    ctx.loop.scheduler.load_state_dict(scheduler_state)
    ctx.loop.steps_done = state["step"]
    torch.set_rng_state(rng["torch_cpu"])
    cuda = [rng[k] for k in sorted(rng) if k.startswith("torch_cuda_")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = state["python_random"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, *rest = state["numpy_random"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
    ctx.done = state["step"]
    ctx.last_losses = state.get("last_losses") or {}


class CheckpointPolicy:
    """When to checkpoint: every ``every`` steps (0: never), or with ``every`` None after
    ``AUTO_EVERY_S`` seconds of training since the last checkpoint."""

    def __init__(self, every: int | None) -> None:
        self.every = every
        self.last = time.monotonic()

    def due(self, step: int) -> bool:
        if self.every == 0:
            return False
        if self.every is not None:
            return step % self.every == 0
        return time.monotonic() - self.last >= AUTO_EVERY_S

    def saved(self) -> None:
        self.last = time.monotonic()
