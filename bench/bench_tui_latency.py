"""How fast the workbench starts and how fast it answers keys while a run trains.

    python bench/bench_tui_latency.py                 # CPU-busy fake engine (GIL held 50 ms a step)
    python bench/bench_tui_latency.py --engine tiny   # the bundled tiny model, really training
    python bench/bench_tui_latency.py --watch         # watching a run another thread writes fast

Prints the time to the first screen (a fresh interpreter: imports, building the app, the
first frame, headless), then key latency: keys are typed into the probe box while the run
trains, and each is timed from the moment the driver receives it to the moment the box
has handled it (its Changed message is dispatched). The goal is under 100 ms.
Not a test: numbers depend on the machine, so this prints them and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the deterministic FakeEngine lives with the tests

STARTUP = r"""
import time
t0 = time.perf_counter()
import asyncio, json, sys, tempfile
from tui_unlearn.tui.app import create_app
t_import = time.perf_counter()

async def main():
    app = create_app(sessions_dir=tempfile.mkdtemp())
    async with app.run_test(size=(100, 32)) as pilot:  # entered once the first screen is up
        t_ready = time.perf_counter()
        heavy = [m for m in ("torch", "transformers") if m in sys.modules]
        # The other tabs are mounted lazily, just after the first frame.
        from tui_unlearn.tui.widgets.probe_pane import ProbePane
        while not app.workbench.query(ProbePane):
            await asyncio.sleep(0.005)
        t_all = time.perf_counter()
    print(json.dumps({"import_s": t_import - t0, "first_screen_s": t_ready - t0, "all_tabs_s": t_all - t0,
                      "heavy_modules_at_first_screen": heavy}))

asyncio.run(main())
"""


def time_to_first_screen(repeats: int) -> None:
    results = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", STARTUP], capture_output=True, text=True, cwd=ROOT, check=True)
        wall = time.perf_counter() - start
        results.append({**json.loads(out.stdout.strip().splitlines()[-1]), "process_s": wall})
    best = min(results, key=lambda r: r["first_screen_s"])
    print("time to first screen (headless, fresh interpreter):")
    print(f"  import tui_unlearn.tui.app   {best['import_s'] * 1000:7.0f} ms")
    print(
        f"  first screen ready           {best['first_screen_s'] * 1000:7.0f} ms  (median of {repeats}: "
        f"{statistics.median(r['first_screen_s'] for r in results) * 1000:.0f} ms)"
    )
    print(f"  every tab mounted            {best['all_tabs_s'] * 1000:7.0f} ms")
    print(f"  whole process incl. exit     {best['process_s'] * 1000:7.0f} ms")
    print(f"  torch/transformers imported by then: {best['heavy_modules_at_first_screen'] or 'none'}")


async def key_latency(engine_name: str, presses: int) -> None:
    from textual import events
    from textual.widgets import Input
    from tui_fakes import FakeEngine

    from tui_unlearn.config import RunConfig
    from tui_unlearn.tui.app import create_app

    if engine_name == "tiny":
        engine = None
        config = RunConfig(steps=100_000, eval_samples=4, probe_samples=2, max_new_tokens=8, eval_every=0, device="cpu")
    else:
        engine = FakeEngine(steps=100_000, eval_every=0, busy_ms=50)
        config = RunConfig()
    handled: dict[str, float] = {}

    def hook(message) -> None:
        if isinstance(message, Input.Changed) and message.input.id == "probe-input":
            handled.setdefault(message.value, time.perf_counter())

    app = create_app(config, sessions_dir=tempfile.mkdtemp(), engine=engine)
    latencies = []
    async with app.run_test(size=(100, 32), message_hook=hook) as pilot:
        while not app.workbench.ready:  # ctrl+r does nothing until every tab is mounted
            await asyncio.sleep(0.05)
        await pilot.pause(0.5)
        await pilot.press("ctrl+r")
        run = app.workbench.run_pane
        deadline = time.monotonic() + 180
        while run.step < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if run.step < 1:
            print(f"the run did not reach its first step: {run.status}; log: {run.log_lines[-3:]}")
        first_step = run.step
        app.workbench.show_tab("probes")
        box = app.workbench.probe_pane.query_one("#probe-input", Input)
        box.focus()
        await pilot.pause(0.2)
        for i in range(presses):
            char = "abcdefghij"[i % 10]
            expected = box.value + char
            sent = time.perf_counter()
            app._driver.send_message(events.Key(char, char))
            while expected not in handled and time.perf_counter() - sent < 5:
                await asyncio.sleep(0.0005)
            latencies.append((handled.get(expected, float("inf")) - sent) * 1000)
            await asyncio.sleep(0.04)
        steps_during = run.step - first_step
        await pilot.press("ctrl+x")
        while app.running:
            await asyncio.sleep(0.05)
    latencies.sort()
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
    print(f"key latency while training ({engine_name} engine; {steps_during} steps trained while measuring):")
    print(
        f"  presses {len(latencies)}   median {statistics.median(latencies):.1f} ms   p95 {p95:.1f} ms   "
        f"max {latencies[-1]:.1f} ms   goal < 100 ms"
    )


async def watch_latency(presses: int, steps_per_s: float = 200.0) -> None:
    """Tab keys on the watch screen while a thread appends steps to the watched session's
    events.jsonl; each is timed from the driver receiving it to the tab being activated."""
    import threading

    from textual import events
    from textual.widgets import TabbedContent
    from tui_fakes import SessionWriter

    from tui_unlearn.tui.app import create_app

    root = Path(tempfile.mkdtemp())
    writer = SessionWriter(root, total=1_000_000, eval_every=0)
    writer.start()
    writer.steps(50)
    stop = threading.Event()

    def write() -> None:
        while steps_per_s and not stop.is_set():
            writer.steps(writer.step + 1)
            time.sleep(1 / steps_per_s)

    activated: list[float] = []

    def hook(message) -> None:
        if isinstance(message, TabbedContent.TabActivated):
            activated.append(time.perf_counter())

    app = create_app(sessions_dir=root, watch=writer.session)
    latencies = []
    thread = threading.Thread(target=write, daemon=True)
    async with app.run_test(size=(100, 32), message_hook=hook):
        pane = app.screen.run_pane
        thread.start()
        while pane.step < 50:
            await asyncio.sleep(0.05)
        first = pane.step
        for i in range(presses):
            key = "f6" if i % 2 == 0 else "f5"
            seen = len(activated)
            sent = time.perf_counter()
            app._driver.send_message(events.Key(key, None))
            while len(activated) == seen and time.perf_counter() - sent < 5:
                await asyncio.sleep(0.0005)
            latencies.append(((activated[-1] if len(activated) > seen else float("inf")) - sent) * 1000)
            await asyncio.sleep(0.04)
        followed = pane.step - first
        stop.set()
    latencies.sort()
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
    print(
        f"tab key latency while watching ({followed} steps followed while measuring, written at {steps_per_s:.0f}/s):"
    )
    print(
        f"  presses {len(latencies)}   median {statistics.median(latencies):.1f} ms   p95 {p95:.1f} ms   "
        f"max {latencies[-1]:.1f} ms   goal < 100 ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("busy", "tiny"), default="busy")
    parser.add_argument("--watch", action="store_true", help="measure the watch screen instead of a run")
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--startup-repeats", type=int, default=3)
    args = parser.parse_args()
    time_to_first_screen(args.startup_repeats)
    if args.watch:
        asyncio.run(watch_latency(args.presses, 0))  # the same keys with nothing written: the tabs' own cost
        asyncio.run(watch_latency(args.presses))
    else:
        asyncio.run(key_latency(args.engine, args.presses))


if __name__ == "__main__":
    main()
