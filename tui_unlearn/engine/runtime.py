"""Where and how a run executes: threads, device, precision and the ``Accelerator``.

The engine runs the same code in one process and under ``accelerate launch`` (DDP, or
FSDP / DeepSpeed from accelerate's own config): ``make_accelerator`` builds the
``Accelerator`` a run trains with, and the rest of the engine asks it which process it
is. Nothing here imports torch at module import time.
"""

from __future__ import annotations

import os
from typing import Any

from tui_unlearn.errors import ConfigError
from tui_unlearn.setting_names import in_the_tui, setting_name

# Above this many intra-op threads a small model gains nothing and a shared machine loses a lot.
MAX_DEFAULT_THREADS = 8
OOM_HELP = (
    "out of memory: try --lora-r 16, a smaller --batch-size with --grad-accum to keep the effective "
    "batch, --gradient-checkpointing, --mixed-precision bf16, or a shorter --max-length"
    + in_the_tui("lora_r", "batch_size", "grad_accum", "gradient_checkpointing", "mixed_precision")
)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads(cores: int | None = None) -> int:
    """Half the cores this process may use, at most 8: 1 on a 2-core machine.

    Measured on 2 cores (bench/bench_threads.py): torch's default (every core) is about as
    fast as 1 thread on a quiet machine and several times slower as soon as anything else
    runs (OpenMP threads spin waiting for a core), while 1 thread barely changes.
    """
    cores = available_cores() if cores is None else cores
    return max(1, min(MAX_DEFAULT_THREADS, cores // 2))


def apply_threads(threads: int | None) -> int:
    """Set torch's intra-op threads for this process (``threads`` None: the default); returns it."""
    import torch

    n = threads or default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def is_distributed() -> bool:
    """True when a launcher (accelerate launch, torchrun) started several processes."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def resolve_mixed_precision(requested: str, device: str) -> str:
    """``auto`` -> bf16 on a GPU that supports it, else no; fp16/bf16 as asked."""
    import torch

    if requested != "auto":
        if requested == "fp16" and not device.startswith("cuda"):
            raise ConfigError(
                f"{setting_name('mixed_precision', 'fp16')} needs a CUDA GPU; use bf16 or no on this device"
            )
        return requested
    if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def make_accelerator(config: Any):
    """The ``Accelerator`` for one run of ``config``.

    In a single process (the TUI, tests, a plain ``--batch``) each run gets fresh
    accelerate state, so runs with other devices or precisions can follow in the same
    process; under a launcher the launcher's state is kept.
    """
    import torch
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.state import AcceleratorState, GradientState

    from tui_unlearn.models.loading import pick_device

    device = pick_device(config.device)
    if not is_distributed():
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
        if device.startswith("cuda:"):
            torch.cuda.set_device(int(device.split(":", 1)[1]))
    precision = resolve_mixed_precision(config.mixed_precision, device)
    return Accelerator(
        cpu=device == "cpu",
        mixed_precision=precision,
        gradient_accumulation_steps=config.grad_accum,
        # Every process reads its own shard of one seeded order (see streams); nothing is dispatched.
        dataloader_config=DataLoaderConfiguration(dispatch_batches=False, split_batches=False),
    )


def local_accelerator(device: str = "cpu", grad_accum: int = 1):
    """A single-process ``Accelerator`` on ``device`` without mixed precision (the tiny-model
    builder, tests): the same loop as a run, none of a run's settings."""
    from types import SimpleNamespace

    return make_accelerator(SimpleNamespace(device=device, mixed_precision="no", grad_accum=grad_accum))


def is_out_of_memory(exc: BaseException) -> bool:
    name = type(exc).__name__
    return "OutOfMemory" in name or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())
