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
)
from tui_unlearn.errors import ConfigError
from tui_unlearn.models.architecture import declared_layer_count, find_decoder_layers


def smaller_student(model, keep: int):
    """A copy of ``model`` keeping ``keep`` of its decoder layers, evenly spaced."""
    import torch

    found = find_decoder_layers(model)
    if found is None:
        raise ConfigError("distill cannot find this model's decoder layers; use student_layers=0")
    n = len(found[2])
    if keep > n:
        # The config check reads the count from local files; a hub model is first seen here.
        raise ConfigError(too_many_layers(keep, n))
    student = copy.deepcopy(model)
    if keep == n:
        return student
    parent, attr, layers = find_decoder_layers(student)  # the copy has the original's layout
    picked = sorted({round(i * (n - 1) / max(keep - 1, 1)) for i in range(keep)})
    kept = torch.nn.ModuleList([layers[i] for i in picked])
    for new_index, layer in enumerate(kept):
        # Caches index layers by position; renumber so generation works after pruning.
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index  # type: ignore[assignment]  # an int attribute, not a submodule
    setattr(parent, attr, kept)
    config = student.config
    for key in ("num_hidden_layers", "n_layer"):
        if hasattr(config, key):
            setattr(config, key, len(kept))
    if getattr(config, "layer_types", None):
        config.layer_types = [config.layer_types[i] for i in picked]
    return student


def too_many_layers(keep: int, n: int) -> str:
    return (
        f"--student-layers {keep} is more than the model's {n} decoder layers; give 1 to {n} "
        "(or 0 for a student of the same architecture)"
    )


def _make_student(model, hp):
    keep = hp["student_layers"]
    return model if keep == 0 else smaller_student(model, keep)


def _check_config(config, hp) -> str | None:
    if hp["student_layers"] == 0:
        return None
    layers = declared_layer_count(str(getattr(config, "model", "") or ""))
    if layers is not None and hp["student_layers"] > layers:
        return too_many_layers(hp["student_layers"], layers)
    if getattr(config, "lora_r", 0):
        return "distill with a smaller student (student_layers > 0) cannot use LoRA: the student is a new, smaller model; set --lora-r 0 or --student-layers 0"
    if getattr(config, "l2_anchor", 0):
        return "distill with a smaller student (student_layers > 0) cannot use --l2-anchor: its weights have another shape than the original's; set one of them to 0"
    return None


def _loss(x: LossInputs) -> dict:
    import torch

    t = x.hp["temperature"]
    terms = {}
    total = 0.0
    if x.retain is not None:
        logits = forward(x.model, x.retain)
        match = kl_to_reference(logits, x.reference_logits(x.retain), x.retain["labels"], t)
        terms["retain_kl"] = match
        total = total + match
    logits = forward(x.model, x.forget)
    away = kl_to_reference(logits, x.reference_logits(x.forget), x.forget["labels"], 1.0)
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
        check_config=_check_config,
        hyperparams=(
            HyperParam(
                "student_layers", "int", 0, "layers of the student (0 = same architecture as the original)", 0, 1000
            ),
            HyperParam("temperature", "float", 2.0, "softmax temperature of the retain matching", 0.1, 20.0),
            HyperParam("margin", "float", 3.0, "how far (KL, nats per token) to push away on forget data", 0.0, 100.0),
            HyperParam("forget_weight", "float", 1.0, "weight of the forget push", 0.0, 100.0),
        ),
        run_defaults={"lr": 1e-3},
    )
)
