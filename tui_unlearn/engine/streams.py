"""Endless, seeded streams of training batches, sharded across processes by accelerate.

A stream walks one fixed order of its examples: epoch ``e`` is a shuffle seeded by
``(seed, e)``, epochs follow each other forever. Every process builds the same order;
accelerate's ``IterableDatasetShard`` cuts it into chunks of ``batch_size x processes``
examples and gives process ``r`` the ``r``-th slice of each chunk. So micro-batch ``j`` of
process ``r`` holds global positions ``(j * processes + r) * batch_size ...``, and an
optimisation step of ``batch x accumulation x processes`` examples sees the same examples
whatever the process count (2 processes at batch 4 = 1 process at batch 4 with 2
accumulation steps). Because the order is a pure function of the seed, a resumed run
starts the stream at ``steps_done x examples per step`` and continues exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The example order of one epoch: a shuffle seeded by (seed, epoch)."""
    order = list(range(n))
    random.Random(f"{seed}:{epoch}").shuffle(order)
    return order


def global_positions(n: int, seed: int, start: int = 0) -> Iterator[int]:
    """Example indices in stream order from global position ``start`` on, forever."""
    epoch, offset = divmod(start, n)
    while True:
        order = epoch_order(n, seed, epoch)
        yield from order[offset:]
        epoch, offset = epoch + 1, 0


def _dataset(examples: Sequence[dict], seed: int, start: int):
    import torch.utils.data

    class ExampleStream(torch.utils.data.IterableDataset):
        def __iter__(self):
            for index in global_positions(len(examples), seed, start):
                yield {**examples[index], "index": index}

    return ExampleStream()


def collate_with_index(pad_id: int):
    from tui_unlearn.data.formatting import collate

    def collate_fn(features: list[dict[str, Any]]):
        import torch

        batch = collate(features, pad_id)
        batch["index"] = torch.tensor([f["index"] for f in features], dtype=torch.long)
        return batch

    return collate_fn


class BatchStream:
    """``next()`` gives this process's next micro-batch of one stream, on its device."""

    def __init__(
        self, examples: Sequence[dict], batch_size: int, seed: int, pad_id: int, accelerator: Any, *, start: int = 0
    ) -> None:
        import torch
        import torch.utils.data

        self.examples = examples
        # A set smaller than the batch is used whole each step rather than repeated within it.
        self.batch_size = max(1, min(batch_size, len(examples)))
        loader = torch.utils.data.DataLoader(
            _dataset(examples, seed, start),
            batch_size=self.batch_size,
            collate_fn=collate_with_index(pad_id),
            # Its own generator: a DataLoader draws a seed when iteration starts, and from the global
            # RNG that draw would land in the middle of training, differently for a resumed run.
            generator=torch.Generator().manual_seed(seed),
        )
        self._loader = accelerator.prepare_data_loader(loader) if accelerator is not None else loader
        self._iterator = iter(self._loader)

    def next(self) -> dict:
        return next(self._iterator)
