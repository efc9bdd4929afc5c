"""Stop on SIGTERM/SIGINT without dying mid-step.

The handler only sets a flag: the job checks stop_requested() at each step boundary, saves a
checkpoint, flushes metrics and exits with 143 (retryable), so a preempted pod or a cancelled
trial loses at most one step. A second signal means "now": it raises Stopped wherever the job
is (checkpoint and result writes are atomic, so that cannot leave a torn file).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

_stop = threading.Event()
_signal_name: str | None = None


class Stopped(Exception):
    """Raised to unwind a job that stopped on request. The CLI maps it to exit code 143."""


def _handler(signum: int, frame: Any) -> None:
    global _signal_name
    if _stop.is_set():
        raise Stopped(f"second {signal.Signals(signum).name}")
    _signal_name = signal.Signals(signum).name
    _stop.set()


def install() -> None:
    """Install the handlers (main thread only, as Python requires)."""
    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


def stop_requested() -> bool:
    return _stop.is_set()


def signal_name() -> str | None:
    return _signal_name


def request_stop() -> None:
    """Same as receiving SIGTERM (for tests and for kinds that stop themselves)."""
    global _signal_name
    _signal_name = _signal_name or "request_stop"
    _stop.set()


def reset() -> None:
    global _signal_name
    _signal_name = None
    _stop.clear()
