"""The event pump: step losses in throttled windows, nothing dropped, order kept."""

from __future__ import annotations

from tui_unlearn import events as ev
from tui_unlearn.tui.messages import Evaluation, Log, RunFinished, StepWindow
from tui_unlearn.tui.pump import EventPump


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def step(n: int, total: int = 100) -> ev.StepLosses:
    return ev.StepLosses(n, total, {"loss": float(n)}, 1e-3, n * 0.01)


def test_fast_steps_arrive_in_few_windows_with_every_point():
    posted, clock = [], Clock()
    pump = EventPump(posted.append, interval=0.25, clock=clock)
    for n in range(1, 101):
        clock.now = n * 0.01  # 100 steps a second
        pump(step(n))
    pump.flush()
    windows = [m for m in posted if isinstance(m, StepWindow)]
    assert [s.step for w in windows for s in w.steps] == list(range(1, 101))
    assert len(windows) <= 6  # the first step, then one window per 0.25 s, then the flush


def test_other_events_flush_pending_steps_first_and_are_posted_at_once():
    posted, clock = [], Clock()
    pump = EventPump(posted.append, interval=10.0, clock=clock)
    pump(step(1))  # the first step is posted at once (nothing posted for a while)
    pump(step(2))
    pump(step(3))
    pump(ev.Evaluation(3, "during", {"forget": {"accuracy": 0.5}}, 1.0))
    pump(ev.Log("saving"))
    pump(ev.RunFinished("finished", {}))
    kinds = [type(m) for m in posted]
    assert kinds == [StepWindow, StepWindow, Evaluation, Log, RunFinished]
    assert [s.step for s in posted[1].steps] == [2, 3]


def test_slow_steps_are_posted_one_by_one():
    posted, clock = [], Clock()
    pump = EventPump(posted.append, interval=0.25, clock=clock)
    for n in range(1, 5):
        clock.now = n * 1.0
        pump(step(n))
    assert [[s.step for s in m.steps] for m in posted] == [[1], [2], [3], [4]]


def test_windows_reach_the_app_in_order_whichever_thread_flushes():
    """Textual queues a message at once on the app's thread and later from any other: a
    window the UI's timer flushes must not overtake one the training thread flushed first."""
    import asyncio
    import threading

    class Target:  # posts as Textual's post_message does
        def __init__(self, loop):
            self.loop, self.thread, self.got = loop, threading.get_ident(), []

        def post_message(self, message):
            if threading.get_ident() == self.thread:
                self.got.append(message)
            else:
                self.loop.call_soon_threadsafe(self.got.append, message)

    async def scenario():
        target, clock = Target(asyncio.get_running_loop()), Clock()
        pump = EventPump(target.post_message, interval=0.25, clock=clock)  # made on the app's thread

        def training():
            clock.now = 1.0
            pump(step(1))  # flushed by the training thread
            pump(step(2))  # buffered

        worker = threading.Thread(target=training)
        worker.start()
        worker.join()
        pump.flush()  # the UI's timer, before the loop has run anything the worker scheduled
        await asyncio.sleep(0.01)
        return target.got

    got = asyncio.run(scenario())
    assert [s.step for w in got for s in w.steps] == [1, 2]
