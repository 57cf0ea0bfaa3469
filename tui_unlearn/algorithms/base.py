"""What an unlearning method declares, and the loss helpers methods share.

A method is one small module that builds an :class:`Algorithm` and registers it. The
engine, the CLI flags and the TUI form all read the declaration; nothing else needs to
know a method exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from tui_unlearn.errors import ConfigError
from tui_unlearn.params import HyperParam, Param

# Shared by every method that adds a retain NLL term; methods change only its default.
RETAIN_WEIGHT = Param("retain_weight", "float", 1.0, "weight of the retain NLL term", 0.0, 100.0)


def retain_weight(default: float = 1.0) -> Param:
    """The shared ``retain_weight`` declaration with this method's default."""
    return RETAIN_WEIGHT if default == RETAIN_WEIGHT.default else replace(RETAIN_WEIGHT, default=default)


@dataclass
class LossInputs:
    """Everything a method's loss may look at for one optimisation (micro-)step.

    ``forget`` and ``retain`` are collated batches (``input_ids``, ``attention_mask``,
    ``labels`` with -100 on prompt and padding, ``index``: each example's position in its
    stream); ``forget`` is None only for methods that train without it (finetune); ``retain`` is None when the run has no retain set. ``alternate`` (methods that
    declare ``alternate_forget``) is the batch of alternative answers to the same forget
    questions, row ``i`` paired with ``forget`` row ``i`` (same ``index``). ``reference`` is
    what the frozen original model provides
    (:class:`~tui_unlearn.algorithms.references.References`; None unless the method or a
    regulariser asked for it): read it through :meth:`reference_logits`,
    :meth:`reference_logprob_sums` and :meth:`reference_activations`. ``state`` is one dict
    kept for the whole run (the same object every step), for what a method fixes once
    (RMU's random direction).
    """

    model: Any
    # A batch dict; typed Any because only finetune (which never reads it) runs without one.
    forget: Any
    retain: dict | None
    reference: Any
    hp: dict[str, Any]
    step: int
    alternate: dict | None = None
    state: dict[str, Any] = field(default_factory=dict)

    def reference_logits(self, batch: dict):
        """The original model's logits on ``batch`` (no gradient)."""
        if self.reference is None:
            raise RuntimeError("this method did not declare needs_reference, so no reference model was built")
        return self.reference.logits(batch)

    def reference_logprob_sums(self, stream: str, batch: dict):
        """The original model's summed answer log-probabilities per example of ``batch`` [B]
        (cached before training for the streams the method declares in ``reference_logprobs``)."""
        if self.reference is None:
            raise RuntimeError("this method did not declare reference_logprobs, so no reference was built")
        return self.reference.logprob_sums(stream, batch)

    def reference_activations(self, batch: dict, layer: int):
        """The original model's output of decoder layer ``layer`` on ``batch`` [B, T, D] (no gradient)."""
        if self.reference is None:
            raise RuntimeError("this method did not declare needs_reference, so no reference model was built")
        return self.reference.activations(batch, layer)


@dataclass(frozen=True)
class Search:
    """Where a sweep looks for one value (a hyperparameter or a run setting such as ``lr``).

    A range ``low..high`` (sampled on a log scale when ``log``; whole numbers when
    ``integer``) or a list of ``choices``. Narrower than the declared validity range: it is
    the region worth trying on a typical model, not every value that is allowed.
    """

    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()

    def describe(self) -> str:
        if self.choices:
            return "|".join(str(c) for c in self.choices)
        return f"{self.low:g}..{self.high:g}{' log' if self.log else ''}"


@dataclass(frozen=True)
class Algorithm:
    name: str
    description: str  # one line, shown in --help and the TUI
    loss: Callable[[LossInputs], dict]  # named loss terms; "loss" is the one optimised
    hyperparams: tuple[HyperParam, ...] = ()
    # The frozen original's logits during training (a reference model is kept: the base with
    # adapters off under LoRA, else a frozen copy). Prefer reference_logprobs where it suffices.
    needs_reference: bool = False
    # Streams ("forget", ...) whose per-example reference log-probabilities are computed once,
    # before training, so no second model is held (NPO, DPO-style methods).
    reference_logprobs: tuple[str, ...] = ()
    needs_forget: bool = True
    needs_retain: bool = False
    # Defaults for the run-level knobs where this method needs other values than most.
    run_defaults: dict[str, Any] = field(default_factory=dict)
    # Optional: rewrite the forget records before tokenisation (data augmentation).
    relabel_forget: Callable[[list[dict], dict, Any], list[dict]] | None = None
    # Optional: build the model that is trained from the original (distillation students).
    make_student: Callable[[Any, dict], Any] | None = None
    # Optional: a one-line reason these settings cannot work with this method (checked before
    # any session exists), e.g. a smaller student with LoRA or an L2 anchor.
    check_config: Callable[[Any, dict], str | None] | None = None
    # Optional: alternative answers to the forget questions, one per forget record and in
    # the same order (DPO's preferred answers); they arrive as ``LossInputs.alternate``.
    alternate_forget: Callable[[list[dict], dict, Any], list[dict]] | None = None
    # Optional: (model, hp) -> names of the only parameters to train (RMU's chosen layers);
    # every other parameter is frozen for the run.
    trainable_parameters: Callable[[Any, dict], list[str]] | None = None
    # Where a sweep looks: hyperparameter (or run setting) name -> range; see ``Search``.
    search_space: dict[str, Search] = field(default_factory=dict)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.hyperparams}

    def parse_hparams(self, given: dict[str, Any] | None, *, strict: bool = False) -> dict[str, Any]:
        """Declared defaults overridden by ``given``; unknown names are a ConfigError.

        ``strict`` (values read from a config file): each value must already have its
        declared type; else text such as "0.5" from a form or a flag is converted.
        """
        known = {p.name: p for p in self.hyperparams}
        out = self.defaults()
        for key, value in (given or {}).items():
            if key not in known:
                names = ", ".join(known) or "none"
                raise ConfigError(f"{self.name} has no hyperparameter {key!r} (it takes: {names})")
            out[key] = known[key].check(value) if strict else known[key].parse(value)
        return out


# ---- taking a loss's gradient in parts ----

# Set by the training loop around each micro-step when it may backpropagate a loss in parts
# (one process, no DeepSpeed); None elsewhere (evaluation, tests, launched runs).
_backward_part: ContextVar[Callable[[Any], None] | None] = ContextVar("backward_part", default=None)


@contextmanager
def backward_in_parts(backward: Callable[[Any], None] | None) -> Iterator[None]:
    """Inside, :func:`backward_early` calls ``backward(loss)`` (the loop's scaled backward)."""
    token = _backward_part.set(backward)
    try:
        yield
    finally:
        _backward_part.reset(token)


def backward_early(loss):
    """Backpropagate a finished part of the step's loss now, freeing its activations.

    Returns what to add into the step's ``loss``: ``loss`` detached once its gradient is
    taken (the value still counts, the gradient is not taken twice), else ``loss`` itself.
    Only valid for a term whose graph shares no tensor with what the loss adds later.
    """
    backward = _backward_part.get()
    if backward is None or not getattr(loss, "requires_grad", False):
        return loss
    backward(loss)
    return loss.detach()


# ---- loss helpers shared by methods (tensors; imported lazily by callers) ----


def token_nll(logits, labels):
    """Per-token negative log-likelihood of the labels [B, T-1] and the mask of counted
    tokens [B, T-1] (bool): position t scores label t+1; prompt and padding are masked."""
    logp, mask = token_logprobs(logits, labels)
    return -logp, mask.bool()


def token_logprobs(logits, labels):
    """Per-token log-probabilities of the labels and the mask of counted tokens.

    ``logits`` [B, T, V] predict position t+1 from t; ``labels`` [B, T] with -100 where
    not scored. Returns (logp [B, T-1], 0 where not scored; mask [B, T-1] float).
    """
    import torch.nn.functional as F

    batch, length = labels.shape
    # Shift the labels, not the logits: a [B, T-1, V] slice of the logits would be copied
    # in the forward pass and again in the backward pass. The last position predicts nothing.
    targets = F.pad(labels[:, 1:], (0, 1), value=-100)
    nll = F.cross_entropy(
        logits.float().reshape(batch * length, -1), targets.reshape(-1), ignore_index=-100, reduction="none"
    )
    mask = labels[:, 1:] != -100
    return -nll.view(batch, length)[:, :-1], mask.float()


def sequence_nll(logits, labels):
    """Per-example mean negative log-likelihood over answer tokens, shape [B]."""
    logp, mask = token_logprobs(logits, labels)
    return -(logp.sum(-1)) / mask.sum(-1).clamp(min=1.0)


def sequence_logprob_sum(logits, labels):
    """Per-example summed log-probability of the answer tokens, shape [B]."""
    logp, _ = token_logprobs(logits, labels)
    return logp.sum(-1)


def forward(model, batch):
    """The model's logits [B, T, V] on ``batch``."""
    # No key/value cache: nothing is generated, and the cache would only hold more tensors.
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits


def _output_head(model):
    """The module that turns hidden states into logits, through DDP and peft wrappers; None if unknown."""
    inner = getattr(model, "module", model)  # DistributedDataParallel keeps the model as .module
    get = getattr(inner, "get_output_embeddings", None)
    try:
        return get() if callable(get) else None
    except (AttributeError, NotImplementedError):
        return None


def answer_logprobs(model, batch):
    """Log-probabilities of the answer tokens only, with the output head run on just those positions.

    Returns (logp [n] float32, rows [n] long): one entry per scored token (label != -100,
    predicted from the position before it) and the row of the batch it belongs to. The
    prompt and padding positions never reach the output head: the head's input is cut to
    the scored positions by a pre-hook, inside the model's own forward (so DDP, FSDP and
    peft wrappers and any logit post-processing still apply). A model whose head is not
    called on the [B, T, H] hidden states is handled by selecting from its full logits.
    """
    import torch.nn.functional as F

    labels = batch["labels"]
    targets = labels[:, 1:]
    rows, cols = (targets != -100).nonzero(as_tuple=True)
    cut = []

    def keep_scored(module, args):
        hidden = args[0]
        if cut or hidden.dim() != 3 or tuple(hidden.shape[:2]) != tuple(labels.shape):
            return None
        cut.append(True)
        return (hidden[rows, cols].unsqueeze(0), *args[1:])

    head = _output_head(model)
    handle = head.register_forward_pre_hook(keep_scored) if head is not None else None
    try:
        logits = forward(model, batch)
    finally:
        if handle is not None:
            handle.remove()
    logits = logits[0] if cut else logits[:, :-1][rows, cols]  # [n, V]
    logp = -F.cross_entropy(logits.float(), targets[rows, cols], reduction="none")
    return logp, rows


def answer_logprob_sums(model, batch):
    """Per-example summed answer log-probability [B], as ``sequence_logprob_sum(forward(...))``
    but with the output head on answer positions only (:func:`answer_logprobs`)."""
    import torch

    logp, rows = answer_logprobs(model, batch)
    sums = torch.zeros(batch["labels"].shape[0], dtype=logp.dtype, device=logp.device)
    return sums.index_add(0, rows, logp)


def answer_nll(model, batch):
    """Per-example mean answer-token NLL [B] (the output head on answer positions only)."""
    counts = (batch["labels"][:, 1:] != -100).sum(-1).clamp(min=1)
    return -answer_logprob_sums(model, batch) / counts


class _StopForward(Exception):
    """Raised by a capture hook once the wanted layer has run: the rest of the forward is waste."""


def layer_activations(model, batch, layer: int):
    """The output hidden states of decoder layer ``layer`` (0-based) on ``batch`` [B, T, D].

    Runs ``model`` only up to that layer (a hook stops the forward there), except for a
    DistributedDataParallel wrapper, whose bookkeeping expects whole forward passes. Keeps
    the gradient when called with grad enabled.
    """
    from tui_unlearn.models.architecture import decoder_layers

    captured = []
    whole = hasattr(model, "require_backward_grad_sync")  # DDP

    def hook(module, inputs, output):
        captured.append(output[0] if isinstance(output, tuple) else output)
        if not whole:
            raise _StopForward

    handle = decoder_layers(model)[layer].register_forward_hook(hook)
    try:
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    except _StopForward:
        pass
    finally:
        handle.remove()
    return captured[0]


def nll(model, batch):
    """Mean answer-token NLL of ``model`` on ``batch`` (a scalar with grad): each example's mean
    over its answer tokens, averaged over the batch."""
    return answer_nll(model, batch).mean()


def plus_retain_nll(x: LossInputs, forget_loss, terms: dict) -> dict:
    """``terms`` with ``loss`` = forget_loss + retain_weight * retain NLL (when there is a retain set).

    The forget term's gradient is taken before the retain forward pass where the training
    loop allows it (:func:`backward_early`), so the two passes' activations are never held
    together.
    """
    total = forget_loss
    if x.retain is not None:
        total = backward_early(forget_loss)
        retain = nll(x.model, x.retain)
        terms["retain_nll"] = retain
        total = total + x.hp["retain_weight"] * retain
    terms["loss"] = total
    return terms


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
