"""The comparison point for bench_train.py: unlearning the way open-unlearning does it.

A plain ``transformers.Trainer`` whose ``compute_loss`` is overridden, as in
locuslab/open-unlearning (``src/trainer/unlearn/grad_diff.py``, ``npo.py``,
``src/trainer/utils.py::compute_dpo_loss``): GradDiff runs the trained model on the forget
batch and on the retain batch (the model's own ``loss`` output: labels are passed in);
NPO deep-copies the model at start as the frozen reference and runs that copy on every
forget batch, every step. The data is a forget-anchored dataset that pairs each forget
example with a random retain example, padded on the right per batch. Written here from
their design, not copied.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer

IGNORE_INDEX = -100


class ForgetRetainDataset(torch.utils.data.Dataset):
    """One item per forget example, each with a uniformly drawn retain example."""

    def __init__(self, forget: Sequence[dict], retain: Sequence[dict]) -> None:
        self.forget, self.retain = forget, retain

    def __len__(self) -> int:
        return len(self.forget)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        item = {"forget": self.forget[idx]}
        if self.retain:
            item["retain"] = self.retain[int(torch.randint(0, len(self.retain), (1,)))]
        return item


class SupervisedCollator:
    """Right-pads ``input_ids`` (pad id) and ``labels`` (-100); nested per stream."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: Sequence[dict]) -> dict[str, Any]:
        if "input_ids" not in items[0]:
            return {key: self([item[key] for item in items]) for key in items[0]}
        ids = torch.nn.utils.rnn.pad_sequence(
            [torch.tensor(i["input_ids"]) for i in items], batch_first=True, padding_value=self.pad_id
        )
        labels = torch.nn.utils.rnn.pad_sequence(
            [torch.tensor(i["labels"]) for i in items], batch_first=True, padding_value=IGNORE_INDEX
        )
        # Built from the padded ids as open-unlearning does; the pad token never occurs in the text.
        return {"input_ids": ids, "attention_mask": ids.ne(self.pad_id), "labels": labels}


def batch_nll(model, inputs: dict):
    """Summed answer-token NLL per sequence [B], and the model outputs."""
    outputs = model(**inputs)
    logits = outputs.logits[..., :-1, :].contiguous()
    labels = inputs["labels"][..., 1:].contiguous()
    loss = F.cross_entropy(logits.transpose(-1, -2), labels, ignore_index=IGNORE_INDEX, reduction="none")
    return loss.sum(-1), outputs


def _fields(batch: dict) -> dict:
    return {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}


class GradDiffTrainer(Trainer):
    """loss = gamma * (-NLL_forget) + alpha * NLL_retain."""

    def __init__(self, *args, gamma: float = 1.0, alpha: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gamma, self.alpha = gamma, alpha
        self.tokens_seen: list[int] = []  # non-pad tokens of each compute_loss call

    def _count(self, *batches: dict) -> None:
        self.tokens_seen.append(int(sum(b["attention_mask"].sum() for b in batches)))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        forget, retain = _fields(inputs["forget"]), _fields(inputs["retain"])
        self._count(forget, retain)
        forget_outputs = model(**forget)
        loss = self.gamma * -forget_outputs.loss + self.alpha * model(**retain).loss
        return (loss, forget_outputs) if return_outputs else loss


class NPOTrainer(GradDiffTrainer):
    """NPO against a deep copy of the starting model, run on each forget batch."""

    def __init__(self, *args, beta: float = 0.1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.beta = beta
        ref = copy.deepcopy(self.model).to(self.accelerator.device)
        ref.eval()
        self.ref_model = self.accelerator.prepare_model(ref, evaluation_mode=True)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        forget, retain = _fields(inputs["forget"]), _fields(inputs["retain"])
        self._count(forget, retain)
        lose_nll, forget_outputs = batch_nll(model, forget)
        with torch.no_grad():
            ref_nll, _ = batch_nll(self.ref_model, forget)
        lose_log_ratio = -(lose_nll - ref_nll)
        npo = -2.0 / self.beta * F.logsigmoid(-self.beta * lose_log_ratio).mean()
        loss = self.gamma * npo + self.alpha * model(**retain).loss
        return (loss, forget_outputs) if return_outputs else loss


TRAINERS = {"npo": NPOTrainer, "grad_diff": GradDiffTrainer}
