"""Knowledge distillation: a student copies the original model on retain data only.

The student (the same architecture, or the original with fewer layers) matches the
teacher's token distributions on the retain set and is pushed at least ``margin`` nats
away from them on the forget set, a hinge so the push stops once the knowledge is gone.
"""

from __future__ import annotations

import copy

from tui_unlearn.algorithms import register
from tui_unlearn.algorithms.base import (
    Algorithm,
    HyperParam,
    LossInputs,
    forward,
    kl_to_reference,
    reference_logits,
)
from tui_unlearn.errors import ConfigError


def decoder_layers(model):
    """The list of transformer blocks of a causal LM (Llama-, GPT-2-, and most HF layouts)."""
    import torch

    for path in ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers"):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, torch.nn.ModuleList):
            return obj
    raise ConfigError("distill cannot find this model's decoder layers; use student_layers=0")


def smaller_student(model, keep: int):
    """A copy of ``model`` keeping ``keep`` of its decoder layers, evenly spaced."""
    import torch

    student = copy.deepcopy(model)
    layers = decoder_layers(student)
    n = len(layers)
    if keep >= n:
        return student
    picked = sorted({round(i * (n - 1) / max(keep - 1, 1)) for i in range(keep)})
    kept = torch.nn.ModuleList([layers[i] for i in picked])
    for new_index, layer in enumerate(kept):
        # Caches index layers by position; renumber so generation works after pruning.
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    parent_path, _, attr = _layers_attr(student)
    setattr(parent_path, attr, kept)
    config = student.config
    for key in ("num_hidden_layers", "n_layer"):
        if hasattr(config, key):
            setattr(config, key, len(kept))
    if getattr(config, "layer_types", None):
        config.layer_types = [config.layer_types[i] for i in picked]
    return student


def _layers_attr(model):
    target = decoder_layers(model)
    for module in model.modules():
        for name, child in module.named_children():
            if child is target:
                return module, target, name
    raise ConfigError("distill cannot find this model's decoder layers; use student_layers=0")


def _make_student(model, hp):
    keep = hp["student_layers"]
    return model if keep == 0 else smaller_student(model, keep)


def _loss(x: LossInputs) -> dict:
    import torch

    t = x.hp["temperature"]
    terms = {}
    total = 0.0
    if x.retain is not None:
        logits = forward(x.model, x.retain)
        match = kl_to_reference(logits, reference_logits(x.reference, x.retain), x.retain["labels"], t)
        terms["retain_kl"] = match
        total = total + match
    logits = forward(x.model, x.forget)
    away = kl_to_reference(logits, reference_logits(x.reference, x.forget), x.forget["labels"], 1.0)
    terms["forget_kl"] = away
    total = total + x.hp["forget_weight"] * torch.relu(x.hp["margin"] - away)
    terms["loss"] = total
    return terms


register(
    Algorithm(
        name="distill",
        description="Distil a student from the original on retain data, pushed away from it on forget data.",
        loss=_loss,
        needs_reference=True,
        needs_retain=True,
        make_student=_make_student,
        hyperparams=(
            HyperParam("student_layers", "int", 0, "layers of the student (0 = same architecture as the original)", 0, 1000),
            HyperParam("temperature", "float", 2.0, "softmax temperature of the retain matching", 0.1, 20.0),
            HyperParam("margin", "float", 3.0, "how far (KL, nats per token) to push away on forget data", 0.0, 100.0),
            HyperParam("forget_weight", "float", 1.0, "weight of the forget push", 0.0, 100.0),
        ),
        run_defaults={"lr": 1e-3},
    )
)
