"""Gradient (activation) checkpointing that actually engages while the model's dropout stays off.

transformers checkpoints a layer only while that layer is in training mode
(``GradientCheckpointingLayer``: ``self.gradient_checkpointing and self.training``), but the
engine trains with the whole model in eval mode so that the model's own dropout never adds
noise (only ``--dropout`` does). Left at that, ``--gradient-checkpointing`` stored every
activation anyway: SmolLM2-135M's LoRA run peaked at the same 2.4 GB with and without it.

So the checkpointed layers themselves are put in training mode before each step: their
sub-modules (attention, MLP, ``nn.Dropout``) keep their own eval mode, so dropout stays off. A
layer whose own ``forward`` reads ``self.training`` (functional dropout in the layer itself, as
some older architectures do) is left in eval mode, uncheckpointed, and the log says how many.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def enable(model: Any, log: Callable[[str], None], *, input_grads: bool = False) -> list[Any]:
    """Turn checkpointing on for ``model`` (non-reentrant) and return the layers to mark
    training before each step (:func:`arm`). ``input_grads``: the input embeddings' output
    must require grad (a frozen base under LoRA adapters, whose checkpointed layers would
    otherwise see no input that needs a gradient)."""
    # transformers 5 renamed gradient checkpointing to activation checkpointing; older releases lack it.
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    # transformers 5 registers the input-grad hook inside the call above; a second registration
    # would replace its record of the first, leaving a hook that nothing removes.
    if input_grads and not getattr(model, "_require_grads_hooks", None):
        model.enable_input_require_grads()
    wrapped = [m for m in model.modules() if getattr(m, "gradient_checkpointing", False) is True]
    layers = [m for m in wrapped if not _reads_training(m)]
    if len(layers) < len(wrapped):
        log(
            f"gradient checkpointing: {len(wrapped) - len(layers)} of {len(wrapped)} layers use their training flag "
            "for dropout; they run without checkpointing, so the model's own dropout stays off"
        )
    if not wrapped:
        log("gradient checkpointing: this model has no layer transformers can checkpoint; it trains without")
    return layers


def disable(model: Any) -> None:
    """Turn checkpointing off and take the input-grad hook away: transformers' own disable
    removes that hook only for a model it wrapped with its PEFT integration, not one peft
    wrapped, and a hook left behind makes a sweep's next trial load the model again."""
    if hasattr(model, "activation_checkpointing_disable"):
        model.activation_checkpointing_disable()
    else:
        model.gradient_checkpointing_disable()
    if hasattr(model, "disable_input_require_grads"):
        model.disable_input_require_grads()


def arm(layers: list[Any]) -> None:
    """Mark the checkpointed layers training (their sub-modules keep their own mode)."""
    for layer in layers:
        layer.training = True


def _reads_training(layer: Any) -> bool:
    forward = type(layer).forward
    forward = getattr(forward, "__wrapped__", forward)  # the layer's own, under transformers' wrapper
    try:
        return "self.training" in inspect.getsource(forward)
    except (OSError, TypeError):
        return True  # source not readable: assume it may, and leave the layer as it is
