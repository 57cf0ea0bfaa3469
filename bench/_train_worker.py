"""One training configuration, measured in a fresh interpreter (run by bench_train.py and bench_gpu.py).

    python bench/_train_worker.py --side ours --algorithm npo --model DIR --forget SRC --retain SRC ...

Prints one ``BENCH-RESULT {json}`` line: median step seconds, tokens per second (wall and
process CPU time), peak memory, set-up seconds, parameter counts.

Timing covers the optimisation steps only: for ours, ``engine.phases.train`` on a
``RunContext`` prepared by ``phases.load_inputs`` + ``prepare_training`` (no evaluation);
for the baseline, ``Trainer.train`` from its first ``on_step_begin``. A step's tokens are
the non-padding tokens of its forget and retain batches.

Memory: on CUDA, ``torch.cuda.max_memory_allocated`` after a reset at the start. On CPU
(``--mode memory``), the peak of live tensor bytes replayed from ``torch.profiler``'s
allocation events (``profile_memory=True`` records every alloc/free of torch's CPU
allocator; the profiler slows steps, so time and memory are separate runs), plus the
model's weights live when profiling starts. Peak RSS above the post-load footprint is
reported too, for reference only: glibc keeps freed pages, so RSS tracks allocation
history, not what the run holds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common


class Meter:
    """Per-step wall and CPU times, non-padding tokens per step, and peak memory."""

    def __init__(self, device: str, memory: bool) -> None:
        self.cuda = device.startswith("cuda")
        self.memory = memory and not self.cuda  # CUDA's own counter is free; the profiler is not
        self.marks: list[float] = []
        self.cpu_marks: list[float] = []
        self.tokens: list[int] = []
        self.profiler = None
        self.start_bytes = 0
        self.rss_start: float | None = None

    def start(self, model) -> None:
        """Called once the model is loaded: what is allocated from here on counts."""
        import torch

        storages = {
            t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
            for t in list(model.parameters()) + list(model.buffers())
        }
        self.start_bytes = sum(storages.values())
        self.rss_start = _reset_peak_rss()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        if self.memory:
            from torch.profiler import ProfilerActivity, profile

            self.profiler = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
            self.profiler.__enter__()
        self.begin()

    def begin(self) -> None:
        """The first step starts now."""
        self._sync()
        self.marks, self.cpu_marks = [time.perf_counter()], [time.process_time()]

    def mark(self) -> None:
        """A step just ended."""
        self._sync()
        self.marks.append(time.perf_counter())
        self.cpu_marks.append(time.process_time())

    def _sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def result(self, warmup: int) -> dict:
        import torch

        peak = None
        if self.cuda:
            peak = torch.cuda.max_memory_allocated()
        elif self.profiler is not None:
            self.profiler.__exit__(None, None, None)
            peak = self.start_bytes + _peak_allocated(self.profiler)
        steps = [b - a for a, b in zip(self.marks, self.marks[1:])][warmup:]
        cpu = [b - a for a, b in zip(self.cpu_marks, self.cpu_marks[1:])][warmup:]
        tokens = self.tokens[warmup : warmup + len(steps)]
        rss = _peak_rss_mb()
        return {
            "steps_timed": len(steps),
            "step_s": common.median(steps),
            "tokens_per_s": sum(tokens) / sum(steps) if steps else None,
            # Process CPU time: with one thread, what a step costs whatever else the machine runs.
            "tokens_per_cpu_s": sum(tokens) / sum(cpu) if cpu and sum(cpu) > 0 else None,
            "tokens_per_step": sum(tokens) / len(tokens) if tokens else None,
            "weights_mb": self.start_bytes / 2**20,
            "peak_live_mb": peak / 2**20 if peak is not None else None,
            "peak_rss_above_load_mb": rss - self.rss_start if rss and self.rss_start else None,
        }


def _peak_allocated(prof) -> int:
    """Largest sum of live CPU allocations, in bytes, above the level when profiling began."""
    import torch

    events = [
        e
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    ]
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> float | None:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs`` 5); the RSS now, in MiB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    rss = _status_kb("VmRSS")
    return rss / 1024 if rss else None


def _peak_rss_mb() -> float | None:
    hwm = _status_kb("VmHWM")
    return hwm / 1024 if hwm else None


def _run_config(args):
    from tui_unlearn.config import RunConfig, resolve

    hparams = {"retain_weight": 1.0}  # open-unlearning's alpha = gamma = 1
    if args.algorithm == "npo":
        hparams["beta"] = 0.1
    return resolve(
        RunConfig(
            model=args.model,
            forget=args.forget,
            retain=args.retain,
            algorithm=args.algorithm,
            hparams=hparams,
            steps=args.steps,
            lr=args.lr,
            batch_size=args.batch_size,
            max_length=args.max_length,
            grad_clip=1.0,
            threads=args.threads,
            lora_r=args.lora_r,
            eval_every=0,
            device=args.device,
            dtype=args.dtype,
            mixed_precision=args.precision,
            gradient_checkpointing=args.checkpointing,
            save_model=False,
            relearn_steps=0,
        )
    )


def run_ours(args, meter: Meter) -> dict:
    from tui_unlearn import events as ev
    from tui_unlearn.algorithms import get_algorithm
    from tui_unlearn.engine import phases
    from tui_unlearn.engine.context import RunContext
    from tui_unlearn.engine.runtime import apply_threads, make_accelerator

    config = _run_config(args)

    def on_event(event):
        if isinstance(event, ev.StepLosses):
            meter.mark()

    ctx = RunContext(config, on_event, lambda: False, Path(tempfile.mkdtemp()))
    ctx.algorithm = get_algorithm(config.algorithm)
    apply_threads(config.threads)
    ctx.accelerator = make_accelerator(config)
    phases.load_inputs(ctx, None)
    meter.start(ctx.loaded.model)
    t0 = time.perf_counter()
    phases.prepare_training(ctx)
    setup_s = time.perf_counter() - t0
    for stream in ctx.streams.values():
        _count_tokens(stream, meter)
    meter.begin()
    phases.train(ctx)
    if ctx.status != "finished" or ctx.done != config.steps:
        raise RuntimeError(f"our run ended {ctx.status} after {ctx.done} steps")
    return {"setup_s": setup_s, "trainable": ctx.scale["trainable_parameters"], "parameters": ctx.scale["parameters"]}


def _count_tokens(stream, meter: Meter) -> None:
    """Add each batch's non-padding tokens to the current step's count."""
    draw = stream.next

    def counted():
        batch = draw()
        step = len(meter.marks) - 1
        while len(meter.tokens) <= step:
            meter.tokens.append(0)
        meter.tokens[step] += int(batch["attention_mask"].sum())
        return batch

    stream.next = counted


def run_baseline(args, meter: Meter) -> dict:
    import torch
    from baseline_trainer import TRAINERS, ForgetRetainDataset, SupervisedCollator
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        TrainerCallback,
        TrainingArguments,
    )

    from tui_unlearn.data.formatting import encode_example, pad_token_id
    from tui_unlearn.data.run_data import load_run_data

    config = _run_config(args)
    data = load_run_data(config)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    dtype = torch.float32 if args.dtype in ("auto", "float32") else getattr(torch, args.dtype)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).to(args.device)
    if args.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def encode(records):
        return [encode_example(tokenizer, r["question"], r["answer"], args.max_length) for r in records]

    dataset = ForgetRetainDataset(encode(data.forget), encode(data.retain))

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            if len(meter.marks) == 1:  # the first step starts here, not at Trainer set-up
                meter.begin()

        def on_step_end(self, *a, **k):
            meter.mark()

    training_args = TrainingArguments(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        learning_rate=args.lr,
        weight_decay=0.0,
        optim="adamw_torch",
        max_grad_norm=1.0,
        max_steps=args.steps,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=max(1, args.steps // 10),
        logging_strategy="no",
        save_strategy="no",
        report_to=[],
        use_cpu=args.device == "cpu",
        bf16=args.precision == "bf16",
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,
        seed=0,
    )
    meter.start(model)
    t0 = time.perf_counter()
    trainer = TRAINERS[args.algorithm](
        model=model,
        args=training_args,
        train_dataset=dataset,
        data_collator=SupervisedCollator(pad_token_id(tokenizer)),
        callbacks=[StepTimer()],
    )
    setup_s = time.perf_counter() - t0
    meter.begin()
    trainer.train()
    meter.tokens = list(trainer.tokens_seen)
    n = sum(p.numel() for p in model.parameters())
    return {"setup_s": setup_s, "trainable": n, "parameters": n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("ours", "baseline"), required=True)
    parser.add_argument("--algorithm", required=True)
    parser.add_argument("--lora-r", type=int, default=0)
    parser.add_argument("--model", required=True)
    parser.add_argument("--forget", required=True)
    parser.add_argument("--retain", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--precision", default="no", help="mixed precision: no or bf16")
    parser.add_argument("--checkpointing", action="store_true", help="gradient checkpointing")
    parser.add_argument("--mode", choices=("time", "memory"), default="time")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    meter = Meter(args.device, memory=args.mode == "memory")
    info = (run_ours if args.side == "ours" else run_baseline)(args, meter)
    common.report({**meter.result(args.warmup), **info, "threads": torch.get_num_threads()})


if __name__ == "__main__":
    main()
