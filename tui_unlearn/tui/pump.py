"""From engine events on the training thread to a few app messages a second.

``EventPump`` is the ``on_event`` callable handed to ``engine.run``. Step losses are
buffered and posted as one ``StepWindow`` at most every ``interval`` seconds, so the UI
redraws a few times a second however fast the steps come, and no loss point is dropped.
Any other event first flushes the buffer (so order is kept: steps before the evaluation
that followed them) and is then posted at once. The app also calls ``flush()`` from a
timer, so the last steps before a long evaluation do not wait for the next event.

Messages reach the app in the order the pump posts them, whichever thread flushes:
Textual queues a message at once when it is posted on the app's thread but only later
(``call_soon_threadsafe``) from any other, so a window the UI's timer flushed could
overtake one the training thread flushed just before, and the older window, arriving
second, would read as steps taken again and cut the newer points from the sparklines.
A pump made on the app's thread (it has a running event loop) therefore hands every
message to that loop, in posting order.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from tui_unlearn import events as ev
from tui_unlearn.tui.messages import StepWindow, message_for

DEFAULT_INTERVAL = 0.25  # seconds between step windows: four redraws a second


class EventPump:
    def __init__(
        self, post: Callable, *, interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic
    ):
        self._post = post
        self._interval = interval
        self._clock = clock
        self._pending: list[ev.StepLosses] = []
        self.started = False  # a RunStarted went through: the run has a session
        self._last_flush = float("-inf")
        # One lock for buffering and posting: a window is always posted before any
        # message of a later event, whichever thread flushes.
        self._lock = threading.Lock()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # no event loop on this thread (tests, scripts): post directly
            self._loop = None

    def __call__(self, event: ev.Event) -> None:
        with self._lock:
            if isinstance(event, ev.StepLosses):
                self._pending.append(event)
                if self._clock() - self._last_flush >= self._interval:
                    self._flush_locked()
                return
            self._flush_locked()
            if isinstance(event, ev.RunStarted):
                self.started = True
            message = message_for(event)
            if message is not None:
                self._emit(message)

    def flush(self) -> None:
        """Post the buffered steps now (called from the UI's timer and at the end of a run)."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._last_flush = self._clock()
        if self._pending:
            window, self._pending = self._pending, []
            self._emit(StepWindow(window))

    def _emit(self, message) -> None:
        if self._loop is None:
            self._post(message)
            return
        try:
            self._loop.call_soon_threadsafe(self._post, message)
        except RuntimeError:  # the app's loop is closed: nobody is left to show it
            pass
