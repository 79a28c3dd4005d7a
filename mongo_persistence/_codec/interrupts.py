"""Telling a real Ctrl-C from a :class:`KeyboardInterrupt` raised by code run while decoding."""

from __future__ import annotations

import contextlib
import signal
import threading
import types
from collections.abc import Iterator
from typing import Any

__all__ = ["watching_interrupts"]


class _InterruptWatch:
    """Tells a real Ctrl-C from a :class:`KeyboardInterrupt` raised by code run while decoding.

    While :func:`watching_interrupts` is active in the main thread, the SIGINT handler is wrapped
    so that every SIGINT delivered is counted before the program's own handler runs (and raises
    :class:`KeyboardInterrupt`, or cancels the main task). Python delivers signals to the main
    thread only, so elsewhere (or with no Python-level handler) a :class:`KeyboardInterrupt` is
    never a real one.
    """

    users = 0
    count = 0
    installed: tuple[Any, Any] | None = None

    @classmethod
    def restore(cls) -> None:
        """Puts the program's handler back once no block watches any more."""
        if cls.users or cls.installed is None:
            return
        counting, previous = cls.installed
        cls.installed = None
        if signal.getsignal(signal.SIGINT) is counting:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def watching_interrupts() -> Iterator[None]:
    """Counts the SIGINTs delivered while the block runs (see :class:`_InterruptWatch`).

    Re-entrant, also across concurrent tasks (the handler is restored when the last block ends);
    does nothing outside the main thread or when SIGINT has no Python handler.
    """
    if _InterruptWatch.users:
        _InterruptWatch.users += 1
        try:
            yield
        finally:
            _InterruptWatch.users -= 1
            _InterruptWatch.restore()
        return
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return

    def counting(signum: int, frame: types.FrameType | None) -> Any:
        _InterruptWatch.count += 1
        return previous(signum, frame)

    try:
        signal.signal(signal.SIGINT, counting)
    except ValueError:  # not the main interpreter
        yield
        return
    _InterruptWatch.users = 1
    _InterruptWatch.installed = (counting, previous)
    try:
        yield
    finally:
        _InterruptWatch.users -= 1
        _InterruptWatch.restore()


def _must_propagate(exc: BaseException, interrupts_before: int) -> bool:
    """Tells whether an exception raised while decoding is a real Ctrl-C, which propagates.

    A :class:`KeyboardInterrupt` raised by code does not. Decoding is synchronous: an
    :class:`asyncio.CancelledError` inside it was raised by code, never by a cancellation of the
    task, which arrives at the next ``await``.
    """
    return isinstance(exc, KeyboardInterrupt) and _InterruptWatch.count > interrupts_before
