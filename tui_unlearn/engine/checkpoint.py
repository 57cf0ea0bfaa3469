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

import hashlib
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

from tui_unlearn.atomic import write_folder_atomically
from tui_unlearn.errors import DataError, first_line

CHECKPOINT_DIR = "checkpoint"
TMP_PREFIX = ".checkpoint.tmp-"
WEIGHTS, OPTIMIZER, STATE = "weights.safetensors", "optimizer.safetensors", "state.json"
# Without --checkpoint-every, a run checkpoints after this much training time (and when stopped).
AUTO_EVERY_S = 300.0


def config_identity(config: Any) -> str:
    """A digest of the run's resolved config: a checkpoint fits only the run that wrote it."""
    # Machine settings (where trackers write, ...) may differ between a run and its resumption.
    text = json.dumps(_canonical(config.defining_dict()), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Checkpoints written before threads, device, eval_batch_size and models_cache were declared
# machine settings carry a digest with them in (and without the trackers' two): still theirs.
_EARLIER_MACHINE = ("report_to", "logging_dir")


def _earlier_identity(config: Any) -> str:
    settings = {k: v for k, v in config.to_dict().items() if k not in _EARLIER_MACHINE}
    return hashlib.sha256(json.dumps(_canonical(settings), sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    """``value`` with every number a float: a setting given as 0 is read back from config.json
    as 0.0 when its type is float, and must not make the same config look like another."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return str(value)
    if isinstance(value, dict):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    return str(value)


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

    def write(tmp: Path) -> None:
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
            "config": config_identity(ctx.config),
            "saved": time.time(),
        }
        (tmp / STATE).write_text(json.dumps(state), encoding="utf-8")

    final = write_folder_atomically(ctx.session.path / CHECKPOINT_DIR, TMP_PREFIX, write)
    ctx.wait_for_everyone()
    return final


def _jsonable_random_state(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def discard_checkpoint(session_path: Path) -> None:
    shutil.rmtree(session_path / CHECKPOINT_DIR, ignore_errors=True)
    for stray in session_path.glob(f"{TMP_PREFIX}*"):  # a save killed midway
        shutil.rmtree(stray, ignore_errors=True)


def _damaged(folder: Path, why: str) -> DataError:
    return DataError(
        f"the checkpoint in {folder} cannot be used: {why}; "
        f"remove that folder to resume from the start (step 0), or start a new run"
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _state_problem(state: dict[str, Any], config: Any) -> str | None:
    """Why state.json (parsed) does not belong to a resumable run of ``config``, or None."""
    step, total = state.get("step"), state.get("total_steps")
    if not isinstance(step, int) or not isinstance(total, int) or isinstance(step, bool) or isinstance(total, bool):
        return "its step or total_steps is not a whole number"
    if total != config.steps:
        return f"it is for a run of {total} steps, and this session's config says {config.steps}"
    if not 0 <= step <= total:
        return f"it claims step {step} of {total}"
    if state.get("config") not in (config_identity(config), _earlier_identity(config)):
        return "it was written for another config (not this session's config.json)"
    optimizer = state.get("optimizer")
    if not (
        isinstance(optimizer, dict)
        and isinstance(optimizer.get("param_groups"), list)
        and all(isinstance(g, dict) for g in optimizer["param_groups"])
        and isinstance(optimizer.get("scalars"), dict)
    ):
        return "its optimizer state is not what a checkpoint holds"
    if not isinstance(state.get("scheduler"), dict):
        return "its scheduler state is not an object"
    py = state.get("python_random")
    if not (
        isinstance(py, list)
        and len(py) == 3
        and _is_int(py[0])
        and isinstance(py[1], list)
        # Mersenne Twister words are unsigned 32-bit: setstate raises OverflowError on others.
        and all(_is_int(x) and 0 <= x < 2**32 for x in py[1])
        and (py[2] is None or _is_number(py[2]))
    ):
        return "its Python random state is damaged"
    np_state = state.get("numpy_random")
    if not (
        isinstance(np_state, list)
        and len(np_state) == 5
        and isinstance(np_state[0], str)
        and isinstance(np_state[1], list)
        and all(_is_int(x) and 0 <= x < 2**32 for x in np_state[1])
        and _is_int(np_state[2])
        and _is_int(np_state[3])
        and _is_number(np_state[4])
    ):
        return "its NumPy random state is damaged"
    losses = state.get("last_losses")
    if losses is not None and not (isinstance(losses, dict) and all(_is_number(v) for v in losses.values())):
        return "its last losses are not numbers"
    trainable = state.get("trainable")
    if not (isinstance(trainable, list) and all(isinstance(n, str) for n in trainable)):
        return "its list of trained tensors is damaged"
    return None


def _tensor_names(path: Path) -> dict[str, tuple[list[int], str]]:
    """name -> (shape, dtype) of a safetensors file, from its header (no tensor is read)."""
    from safetensors import safe_open

    out = {}
    with safe_open(str(path), framework="pt") as fh:
        for name in fh.keys():  # noqa: SIM118  (safe_open is not a mapping)
            part = fh.get_slice(name)
            out[name] = (list(part.get_shape()), str(part.get_dtype()))
    return out


def verify_checkpoint(session_path: Path, config: Any) -> int | None:
    """Steps done according to the session's checkpoint, checked to be whole and to belong to
    ``config`` (the session's own, resolved): None when the session has no checkpoint.

    What can be checked without the model is checked here, before anything is loaded; the
    tensors' shapes and types are checked against the model by ``load_checkpoint``. A damaged
    checkpoint is a DataError (exit 3) with one line.
    """
    from tui_unlearn.session_files import check_regular, read_json_object

    folder = session_path / CHECKPOINT_DIR
    if not folder.exists() and not folder.is_symlink():
        return None
    if not folder.is_dir():
        raise _damaged(folder, "it is not a folder")
    for name in (STATE, WEIGHTS, OPTIMIZER):
        if not (folder / name).exists():
            raise _damaged(folder, f"{name} is missing")
        problem = check_regular(folder / name)
        if problem is not None:
            raise _damaged(folder, problem)
    state, problem = read_json_object(folder / STATE)
    problem = problem or _state_problem(state, config)
    if problem is not None:
        raise _damaged(folder, problem)
    try:
        weights, stored = _tensor_names(folder / WEIGHTS), _tensor_names(folder / OPTIMIZER)
    except Exception as exc:  # safetensors raises its own error types (and OSError, ValueError)
        raise _damaged(folder, f"a tensor file is unreadable ({first_line(exc, 120)})") from None
    if sorted(weights) != sorted(state["trainable"]):
        raise _damaged(folder, f"{WEIGHTS} does not hold the tensors state.json lists")
    if stored.get("rng.torch_cpu", ([], ""))[1] != "U8":
        raise _damaged(folder, "the random state of torch is missing")
    for key in stored:
        index, _, name = key.partition(".")
        if key.startswith("rng."):
            continue
        if not (index.isdigit() and name):
            raise _damaged(folder, f"{OPTIMIZER} holds an unknown tensor {key[:60]!r}")
    return int(state["step"])


def _same_kind(live: Any, stored: Any) -> bool:
    """Whether ``stored`` can stand where the live optimizer or scheduler has ``live``."""
    if _is_number(live):
        return _is_number(stored)
    if isinstance(live, (list, tuple)):
        return isinstance(stored, list) and len(stored) == len(live) and all(map(_same_kind, live, stored))
    if live is None:
        return True
    return type(stored) is type(live)


def _fit_problem(state: dict[str, Any], weights: dict, stored: dict, model: Any, optimizer: Any, scheduler: Any):
    """Why the checkpoint's tensors and states do not fit this run's model, optimizer and
    scheduler, or None. ``copy_`` broadcasts and ``load_state_dict`` takes anything: a tensor of
    the wrong shape would be spread over the weights without a word."""
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if sorted(weights) != sorted(params):
        unknown = len(set(weights) - set(params))
        return f"its tensors are not this run's trained tensors ({unknown} unknown); was the model or the LoRA setting changed?"
    for name, tensor in weights.items():
        if tuple(tensor.shape) != tuple(params[name].shape) or tensor.dtype != params[name].dtype:
            return (
                f"tensor {name} is {tuple(tensor.shape)} {tensor.dtype}, "
                f"the model's is {tuple(params[name].shape)} {params[name].dtype}"
            )
    ordered = [p for group in optimizer.param_groups for p in group["params"]]
    for key, tensor in stored.items():
        if key.startswith("rng."):
            continue
        index, _, name = key.partition(".")
        if not (index.isdigit() and name):
            return f"{OPTIMIZER} holds an unknown tensor {key[:60]!r}"
        if int(index) >= len(ordered):
            return f"the optimizer state names parameter {index} of {len(ordered)}"
        if name == "step":
            if tensor.numel() != 1:
                return "an optimizer step count is not one number"
        elif tuple(tensor.shape) != tuple(ordered[int(index)].shape) or not tensor.is_floating_point():
            return f"optimizer tensor {key} is {tuple(tensor.shape)}, its parameter's is {tuple(ordered[int(index)].shape)}"
    live_groups = optimizer.state_dict()["param_groups"]
    groups = state["optimizer"]["param_groups"]
    if len(groups) != len(live_groups) or not all(
        set(g) == set(live) and all(_same_kind(live[k], g[k]) for k in live) for g, live in zip(groups, live_groups)
    ):
        return "its optimizer settings are not this run's"
    live_scheduler = scheduler.state_dict()
    for key, value in state["scheduler"].items():
        if key not in live_scheduler or not _same_kind(live_scheduler[key], value):
            return f"its scheduler state {key!r} is damaged"
    rng = stored.get("rng.torch_cpu")
    if rng is None or rng.ndim != 1 or str(rng.dtype) != "torch.uint8":
        return "the random state of torch is damaged"
    return None


def load_checkpoint(ctx: Any, folder: Path) -> None:
    """Load the checkpoint in ``folder`` over the prepared model, optimizer, scheduler and RNGs.

    Everything is checked before anything is changed (``verify_checkpoint``, then the
    tensors against the model); a checkpoint that does not fit is a DataError (one line).
    """
    import numpy as np
    import torch
    from safetensors.torch import load_file

    from tui_unlearn.session_files import read_json_object

    state, problem = read_json_object(folder / STATE)
    problem = problem or _state_problem(state, ctx.config)
    if problem is not None:
        raise _damaged(folder, problem)
    model = ctx.accelerator.unwrap_model(ctx.loop.model)
    try:
        weights = load_file(str(folder / WEIGHTS))
        stored = load_file(str(folder / OPTIMIZER))
    except Exception as exc:  # safetensors raises its own error types (and OSError, ValueError)
        raise _damaged(folder, f"a tensor file is unreadable ({first_line(exc, 120)})") from None
    problem = _fit_problem(state, weights, stored, model, ctx.loop.optimizer, ctx.loop.scheduler)
    if problem is not None:
        raise _damaged(folder, problem)
    rng = {k[4:]: v for k, v in stored.items() if k.startswith("rng.")}
    tensors = {k: v for k, v in stored.items() if not k.startswith("rng.")}
    params = dict(model.named_parameters())
    try:
        torch.set_rng_state(rng["torch_cpu"])
        version, internal, gauss = state["python_random"]
        random.setstate((version, tuple(internal), gauss))
        kind, keys, *rest = state["numpy_random"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
        cuda = [rng[k] for k in sorted(rng) if k.startswith("torch_cuda_")]
        if cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda)
        ctx.loop.optimizer.load_state_dict(_optimizer_state(tensors, state["optimizer"], ctx.accelerator.device))
        scheduler_state = ctx.loop.scheduler.state_dict()
        scheduler_state.update(state["scheduler"])
        ctx.loop.scheduler.load_state_dict(scheduler_state)
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError, OverflowError) as exc:
        raise _damaged(folder, f"its states cannot be restored ({first_line(exc, 120)})") from None
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))
    ctx.loop.steps_done = state["step"]
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
