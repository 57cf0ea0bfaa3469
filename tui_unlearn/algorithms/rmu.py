"""RMU: representation misdirection (Li et al. 2024, "The WMDP Benchmark: Measuring and
Reducing Malicious Use With Unlearning", section 5).

On forget inputs, one chosen decoder layer's output is pushed toward a fixed random unit
direction scaled by a steering coefficient, so everything downstream of it sees noise
where the forgotten knowledge was; on retain inputs that layer's output is held equal to
the frozen original's. Only the parameters of the chosen layer and the few before it are
updated (WMDP: layers 5-7 of a 32-layer model, steering at layer 7).

Differences from WMDP's ``rmu/unlearn.py``, each to make the defaults carry across model
sizes: ``steering_coeff`` is relative (the target's norm as a multiple of the original's
mean activation norm at that layer, measured on the first forget batch; WMDP's absolute
coefficient c is c / that norm); both mean-squared errors are divided by the squared
mean activation norm, so ``retain_weight`` does not depend on the model's width; and only
the positions that predict answer tokens count (as open-unlearning's port does), not the
prompt. ``layer`` -1 picks a quarter of the way up the stack, as WMDP's 7 of 32. WMDP
updates only the layers' MLP down-projections; ``param_filter`` "mlp.down_proj" does that,
the default trains every parameter of those layers. The random direction is drawn from
torch.rand (non-negative entries, as WMDP) with the run's seed.
"""

from __future__ import annotations

from tui_unlearn.algorithms import register
from tui_unlearn.algorithms.base import Algorithm, HyperParam, LossInputs, Search, layer_activations


def chosen_layer(n_layers: int, layer: int) -> int:
    """The steered layer: ``layer`` when given (>= 0), else a quarter of the way up, at most
    the second-to-last layer so something downstream reads the noise."""
    if layer >= 0:
        return layer
    return max(0, min(round(n_layers * 0.25), n_layers - 2))


def _layer_index(model, hp) -> int:
    from tui_unlearn.errors import ConfigError
    from tui_unlearn.models.architecture import decoder_layers

    n = len(decoder_layers(model))
    index = chosen_layer(n, hp["layer"])
    if index >= n:
        raise ConfigError(f"rmu: layer {index} does not exist; the model has {n} decoder layers (0..{n - 1})")
    return index


def trainable_parameter_names(model, hp) -> list[str]:
    """Names of the parameters RMU updates: those of layers layer-k+1..layer (k =
    ``trainable_layers``) whose name contains ``param_filter``."""
    from tui_unlearn.errors import ConfigError
    from tui_unlearn.models.architecture import decoder_layers

    layers = decoder_layers(model)
    top = _layer_index(model, hp)
    chosen = range(max(0, top - hp["trainable_layers"] + 1), top + 1)
    inside = {id(p) for i in chosen for p in layers[i].parameters()}
    names = [
        name
        for name, p in model.named_parameters()
        if id(p) in inside and hp["param_filter"] in name and p.requires_grad
    ]
    if not names:
        raise ConfigError(
            f"rmu: no trainable parameter of layers {chosen.start}..{top} matches param_filter {hp['param_filter']!r}"
        )
    return names


def answer_positions(labels):
    """[B, T] float: 1 at positions whose next token is an answer token (they predict the answer)."""
    import torch

    mask = torch.zeros_like(labels, dtype=torch.float32)
    mask[:, :-1] = (labels[:, 1:] != -100).float()
    return mask


def masked_sq_error(a, b, mask):
    """Mean over counted positions of the squared L2 distance ||a - b||^2 (a, b [B, T, D])."""
    per_position = (a.float() - b.float()).square().sum(-1)
    return (per_position * mask).sum() / mask.sum().clamp(min=1.0)


def _direction(x: LossInputs, activations, mask):
    """The fixed steering target (a [D] vector) and the original's mean activation norm,
    drawn and measured once per run (the first call) and kept in ``x.state``."""
    import torch

    if "rmu_target" not in x.state:
        norms = activations.detach().float().norm(dim=-1)
        mean_norm = float((norms * mask).sum() / mask.sum().clamp(min=1.0))
        generator = torch.Generator().manual_seed(int(x.state.get("seed", 0)))
        u = torch.rand(activations.shape[-1], generator=generator)
        u = u / u.norm()
        x.state["rmu_norm"] = max(mean_norm, 1e-6)
        x.state["rmu_target"] = u * x.hp["steering_coeff"] * x.state["rmu_norm"]
    target = x.state["rmu_target"].to(device=activations.device, dtype=activations.dtype)
    return target, x.state["rmu_norm"]


def _loss(x: LossInputs) -> dict:
    layer = _layer_index(x.model, x.hp)
    forget_mask = answer_positions(x.forget["labels"])
    acts = layer_activations(x.model, x.forget, layer)
    target, norm = _direction(x, acts, forget_mask)
    scale = norm * norm
    forget = masked_sq_error(acts, target.expand_as(acts), forget_mask) / scale
    terms = {"rmu_forget": forget}
    total = forget
    if x.retain is not None and x.hp["retain_weight"] > 0:
        retain_mask = answer_positions(x.retain["labels"])
        retain_acts = layer_activations(x.model, x.retain, layer)
        frozen = x.reference_activations(x.retain, layer)
        retain = masked_sq_error(retain_acts, frozen, retain_mask) / scale
        terms["rmu_retain"] = retain
        total = total + x.hp["retain_weight"] * retain
    terms["loss"] = total
    return terms


register(
    Algorithm(
        name="rmu",
        description="RMU: steer one layer's activations on forget data to a random direction, hold them on retain data.",
        loss=_loss,
        needs_reference=True,
        needs_retain=True,
        trainable_parameters=trainable_parameter_names,
        hyperparams=(
            HyperParam(
                "layer", "int", -1, "decoder layer whose output is steered (-1: a quarter of the way up)", -1, 10_000
            ),
            HyperParam(
                "trainable_layers", "int", 3, "layers updated: the steered one and the ones just below it", 1, 10_000
            ),
            HyperParam(
                "param_filter", "str", "", "train only parameters whose name contains this (e.g. mlp.down_proj)"
            ),
            HyperParam(
                "steering_coeff",
                "float",
                4.0,
                "norm of the steering target, in multiples of the original's mean activation norm there",
                0.0,
                1e4,
            ),
            HyperParam(
                "retain_weight", "float", 20.0, "weight of holding retain activations at the original's", 0.0, 1e6
            ),
        ),
        search_space={
            "steering_coeff": Search(1.0, 20.0, log=True),
            "retain_weight": Search(1.0, 200.0, log=True),
            "lr": Search(1e-4, 3e-3, log=True),
        },
        run_defaults={"lr": 1e-3},
    )
)
