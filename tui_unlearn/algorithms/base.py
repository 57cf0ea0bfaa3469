"""What an unlearning method declares, and the loss helpers methods share.

A method is one small module that builds an :class:`Algorithm` and registers it. The
engine, the CLI flags and the TUI form all read the declaration; nothing else needs to
know a method exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from tui_unlearn.errors import ConfigError

_TYPES = {"float": float, "int": int, "bool": bool, "str": str}


@dataclass(frozen=True)
class HyperParam:
    """One tunable number (or choice) of a method, with the range the UI and CLI enforce."""

    name: str
    type: str  # "float" | "int" | "bool" | "str"
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None

    def parse(self, value: Any) -> Any:
        """``value`` (from a flag, a form field or a config file) as this parameter's type.

        Raises ConfigError with a one-line message on a bad value.
        """
        kind = _TYPES[self.type]
        try:
            if kind is bool:
                if isinstance(value, str):
                    low = value.strip().lower()
                    if low not in {"true", "false", "1", "0", "yes", "no", "on", "off"}:
                        raise ValueError(value)
                    parsed: Any = low in {"true", "1", "yes", "on"}
                else:
                    parsed = bool(value)
            elif kind is int:
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(value)
                parsed = int(str(value).strip()) if isinstance(value, str) else int(value)
            elif kind is float:
                parsed = float(value)
                if not math.isfinite(parsed):
                    raise ValueError(value)
            else:
                parsed = str(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{self.name} must be a {self.type}, got {value!r}: {self.help}"
            ) from None
        if self.choices is not None and parsed not in self.choices:
            raise ConfigError(f"{self.name} must be one of {', '.join(self.choices)}, got {parsed!r}")
        if self.min is not None and parsed < self.min:
            raise ConfigError(f"{self.name} must be >= {self.min}, got {parsed}")
        if self.max is not None and parsed > self.max:
            raise ConfigError(f"{self.name} must be <= {self.max}, got {parsed}")
        return parsed


@dataclass
class LossInputs:
    """Everything a method's loss may look at for one optimisation step.

    ``forget`` and ``retain`` are collated batches (``input_ids``, ``attention_mask``,
    ``labels`` with -100 on prompt and padding); ``retain`` is None when the run has no
    retain set. ``reference`` is the frozen original model (None unless the method or a
    regulariser asked for it).
    """

    model: Any
    forget: dict | None
    retain: dict | None
    reference: Any
    hp: dict[str, Any]
    step: int


@dataclass(frozen=True)
class Algorithm:
    name: str
    description: str  # one line, shown in --help and the TUI
    loss: Callable[[LossInputs], dict]  # named loss terms; "loss" is the one optimised
    hyperparams: tuple[HyperParam, ...] = ()
    needs_reference: bool = False
    needs_forget: bool = True
    needs_retain: bool = False
    # Defaults for the run-level knobs where this method needs other values than most.
    run_defaults: dict[str, Any] = field(default_factory=dict)
    # Optional: rewrite the forget records before tokenisation (data augmentation).
    relabel_forget: Callable[[list[dict], dict, Any], list[dict]] | None = None
    # Optional: build the model that is trained from the original (distillation students).
    make_student: Callable[[Any, dict], Any] | None = None

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.hyperparams}

    def parse_hparams(self, given: dict[str, Any] | None) -> dict[str, Any]:
        """Declared defaults overridden by ``given``; unknown names are a ConfigError."""
        known = {p.name: p for p in self.hyperparams}
        out = self.defaults()
        for key, value in (given or {}).items():
            if key not in known:
                names = ", ".join(known) or "none"
                raise ConfigError(
                    f"{self.name} has no hyperparameter {key!r} (it takes: {names})"
                )
            out[key] = known[key].parse(value)
        return out


# ---- loss helpers shared by methods (tensors; imported lazily by callers) ----

def token_logprobs(logits, labels):
    """Per-token log-probabilities of the labels and the mask of counted tokens.

    ``logits`` [B, T, V] predict position t+1 from t; ``labels`` [B, T] with -100 where
    not scored. Returns (logp [B, T-1], mask [B, T-1] float).
    """
    import torch

    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    mask = (shift_labels != -100)
    safe = shift_labels.clamp(min=0)
    logp = torch.log_softmax(shift_logits, dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return logp * mask, mask.float()


def sequence_nll(logits, labels):
    """Per-example mean negative log-likelihood over answer tokens, shape [B]."""
    logp, mask = token_logprobs(logits, labels)
    return -(logp.sum(-1)) / mask.sum(-1).clamp(min=1.0)


def sequence_logprob_sum(logits, labels):
    """Per-example summed log-probability of the answer tokens, shape [B]."""
    logp, _ = token_logprobs(logits, labels)
    return logp.sum(-1)


def forward(model, batch):
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def nll(model, batch):
    """Mean answer-token NLL of ``model`` on ``batch`` (a scalar with grad)."""
    return sequence_nll(forward(model, batch), batch["labels"]).mean()


def plus_retain_nll(x: LossInputs, forget_loss, terms: dict) -> dict:
    """``terms`` with ``loss`` = forget_loss + retain_weight * retain NLL (when there is a retain set)."""
    total = forget_loss
    if x.retain is not None:
        retain = nll(x.model, x.retain)
        terms["retain_nll"] = retain
        total = total + x.hp["retain_weight"] * retain
    terms["loss"] = total
    return terms


def reference_logits(reference, batch):
    import torch

    with torch.no_grad():
        return forward(reference, batch)


def kl_to_reference(logits, ref_logits, labels, temperature: float = 1.0):
    """KL(reference || model) per answer token, averaged: how far the model moved away.

    Only positions that predict an answer token count (prompt and padding masked).
    """
    import torch

    mask = (labels[:, 1:] != -100).float()
    t = temperature
    logq = torch.log_softmax(logits[:, :-1, :].float() / t, dim=-1)
    logp = torch.log_softmax(ref_logits[:, :-1, :].float() / t, dim=-1)
    kl = (logp.exp() * (logp - logq)).sum(-1)
    return (kl * mask).sum() / mask.sum().clamp(min=1.0) * (t * t)
