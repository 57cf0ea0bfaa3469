"""What the trials of one sweep share when they run one after another in one process.

A trial differs from the one before only in what it trains (learning rate, steps, the
method's hyperparameters, ...); its records, tokenizer, evaluation plan, oracle and the
original model are the same. :class:`WarmStart` keeps them between runs: the records and
the plan are reused (a deep copy of the records per run: training may add a retain set to
them), the model stays loaded and its original weights are copied back in from a snapshot
taken when it was loaded, instead of reading the files again. The "before" evaluation and
the original's answers to the general prompts and the probe come from the evaluation cache
(``engine.eval_cache``), as for any run.

A run that leaves the model in a shape the snapshot cannot undo (hooks still attached,
modules replaced, a method that failed halfway through wrapping it) costs the next run a
fresh load, never a wrong start: :meth:`WarmStart.restore` checks the model against what it
was when loaded, and drops it when anything but the weights differs.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Settings that act on training only: runs differing in these alone share their inputs.
TRAINING_ONLY = frozenset(
    {
        "hparams",
        "steps",
        "lr",
        "batch_size",
        "grad_clip",
        "grad_accum",
        "mixed_precision",
        "gradient_checkpointing",
        "threads",
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "lora_targets",
        "kl_retain",
        "dropout",
        "eval_every",
        "stop_when",
        "keep_best",
        "utility_floor",
        "calibrate",
        "guard_general",
        "guard_knowledge",
        "probe_samples",
        "probes",
        "relearn_steps",
        "relearn_lr",
        "checkpoint_every",
        "save_model",
        "save_adapter",
    }
)
# What loading the model depends on.
MODEL_SETTINGS = ("model", "device", "dtype", "trust_remote_code", "models_cache")


def _key(config: Any, names: Any) -> str:
    values = config.to_dict()
    return json.dumps({k: values.get(k) for k in sorted(names)}, sort_keys=True, default=str)


def inputs_key(config: Any) -> str:
    """What decides a run's records, evaluation plan and oracle: every setting but the training ones."""
    return _key(config, set(config.to_dict()) - TRAINING_ONLY)


def model_key(config: Any) -> str:
    return _key(config, MODEL_SETTINGS)


@dataclass
class _Model:
    key: str
    loaded: Any  # models.loading.LoadedModel
    weights: list[Any]  # a copy of every parameter and buffer, in model order
    requires_grad: list[bool]
    names: list[str]  # parameter and buffer names: a module replaced or added shows here
    hooks: int  # forward / backward hooks on any module when loaded
    instance_attrs: frozenset[str]  # the model object's own attributes (accelerate patches forward)
    training: bool


def _tensors(model: Any) -> list[tuple[str, Any]]:
    return list(model.named_parameters()) + list(model.named_buffers())


def _hooks(model: Any) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks)
        for m in model.modules()
    )


@dataclass
class WarmStart:
    """Inputs kept between runs in this process (pass one to ``engine.run(..., warm=)``).

    ``loads`` counts the model loads and ``reused`` the runs that found their model here:
    what a sweep reports and what tests check.
    """

    loads: int = 0
    reused: int = 0
    _model: _Model | None = None
    _inputs_key: str | None = None
    _inputs: dict[str, Any] = field(default_factory=dict)  # "data", "splits", "plan", "oracle" of that key

    # ---- the model ----

    def model(self, config: Any, load: Callable[[], Any], log: Callable[[str], None]) -> Any:
        """The loaded original model for ``config``: kept and restored, or ``load()``-ed now."""
        key = model_key(config)
        kept = self._model
        if kept is not None and kept.key == key:
            problem = self.restore()
            if problem is None:
                self.reused += 1
                log("reusing the loaded model (original weights restored from memory)")
                return kept.loaded
            log(f"loading the model again: {problem}")
        self.drop()
        loaded = load()
        self.loads += 1
        self._model = self._snapshot(key, loaded)
        return loaded

    @staticmethod
    def _snapshot(key: str, loaded: Any) -> _Model:
        import torch

        model = loaded.model
        named = _tensors(model)
        with torch.no_grad():
            # Host memory for accelerator weights: the device keeps room for the run itself.
            weights = [t.detach().to("cpu", copy=True) for _, t in named]
        return _Model(
            key,
            loaded,
            weights,
            [p.requires_grad for p in model.parameters()],
            [name for name, _ in named],
            _hooks(model),
            frozenset(vars(model)),
            model.training,
        )

    def restore(self) -> str | None:
        """Put the original weights back into the kept model; why not (then drop it), or None."""
        import torch

        kept = self._model
        if kept is None:
            return "no model kept"
        model = kept.loaded.model
        # accelerate's mixed precision patches ``forward`` on the instance; the class's is the original.
        for name in set(vars(model)) - kept.instance_attrs:
            if name in ("forward", "_original_forward"):
                delattr(model, name)
        # transformers 5 calls gradient checkpointing activation checkpointing; older releases lack that name.
        new = hasattr(model, "activation_checkpointing_disable")
        if getattr(model, "is_activation_checkpointing" if new else "is_gradient_checkpointing", False):
            (model.activation_checkpointing_disable if new else model.gradient_checkpointing_disable)()
        named = _tensors(model)
        if [name for name, _ in named] != kept.names:
            return "the last run changed the model's modules"
        if _hooks(model) != kept.hooks:
            return "the last run left hooks on the model"
        with torch.no_grad():
            for (_, tensor), saved in zip(named, kept.weights):
                if tensor.shape != saved.shape or tensor.dtype != saved.dtype:
                    return "the last run changed a weight's shape or type"
                tensor.copy_(saved)
        for p, flag in zip(model.parameters(), kept.requires_grad):
            p.grad = None
            p.requires_grad_(flag)
        model.train(kept.training)
        return None

    def drop(self) -> None:
        """Forget the kept model (the next run loads it)."""
        self._model = None

    def after_run(self, ctx: Any) -> None:
        """Take LoRA adapters back out of the kept model (the run wrapped it in place)."""
        from tui_unlearn.models import lora

        model = getattr(ctx, "model", None)
        if self._model is None or model is None or not lora.is_peft(model):
            return
        try:
            model.unload()  # the base modules back in place of the adapters (weights are restored next run)
        except Exception:  # noqa: BLE001 - whatever state it is in, a fresh load is the safe answer
            self.drop()

    # ---- records, plan, oracle ----

    def inputs(self, config: Any, what: str, make: Callable[[], Any], *, copy_each: bool = False) -> Any:
        """``what`` ("data", "splits", "plan", "oracle") for ``config``: kept, or ``make()``-d
        and kept; a deep copy each time when the run may change it."""
        key = inputs_key(config)
        if key != self._inputs_key:  # another sweep point's records: keep only the latest
            self._inputs_key, self._inputs = key, {}
        kept = self._inputs
        if what not in kept:
            kept[what] = make()
        return copy.deepcopy(kept[what]) if copy_each else kept[what]
