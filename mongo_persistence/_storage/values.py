"""An unchanged entity found before it is encoded: the fingerprint of its value in memory.

PTB hands over a deep copy of every entity it marked, changed or not; encoding it only to find
that nothing changed costs a walk of the codec and a BSON encoding. Once a value was found
unchanged and was plain (its BSON holds no codec tag: it is made of ``dict`` with ``str`` keys,
``list``, ``str``, ``int``, ``float``, ``bool``, ``None``, ``bytes`` and UTC ``datetime``, of
exactly these types), the fingerprint of its pickle stands for it: an equal pickle is a value of
the same types and values, hence the same BSON, so the next equal value is skipped at once.

The pickle is made in memory and hashed, never stored nor loaded, so it need not be loadable: its
memo starts with the ``datetime`` class and the UTC time zone (:data:`_SEEDED`), which a pickle
otherwise names in full for every date (three module lookups and reductions: 4 of the 5 µs a
user's data with one date took). A value that cannot be pickled, or holds other types, is
encoded as always.
"""

from __future__ import annotations

import datetime as dtm
import hashlib
import io
import pickle
import threading
from typing import Final

__all__ = ["value_digest"]

_PROTOCOL: Final = pickle.HIGHEST_PROTOCOL
_SEEDED: Final = (dtm.datetime, dtm.timezone.utc)
"""Objects the memo of every pickle starts with (referenced by their index, never reduced)."""
_MEMO: Final = {id(obj): (index, obj) for index, obj in enumerate(_SEEDED)}


class _Pickling:
    """A pickler and its buffer, reused: creating a pickler costs more than a small pickle."""

    __slots__ = ("buffer", "busy", "pickler")

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.pickler = pickle.Pickler(self.buffer, protocol=_PROTOCOL)
        self.busy = False


_LOCAL: Final = threading.local()
"""``state``: the :class:`_Pickling` of this thread."""


def _state() -> _Pickling:
    """The pickler of the running thread (a new one for a value whose ``__reduce__`` asks)."""
    state: _Pickling | None = getattr(_LOCAL, "state", None)
    if state is None:
        state = _LOCAL.state = _Pickling()
    return _Pickling() if state.busy else state


def _pickled(value: object) -> bytes:
    """The pickle of a value, with the seeded memo."""
    state = _state()
    buffer, pickler = state.buffer, state.pickler
    pickler.memo = _MEMO  # copied: the seeded objects, nothing of the last value
    state.busy = True
    try:
        pickler.dump(value)
        return buffer.getvalue()
    except BaseException:
        if getattr(_LOCAL, "state", None) is state:  # it may be left mid-pickle: not reused
            _LOCAL.state = None
        raise
    finally:
        pickler.clear_memo()  # holds the value's containers: released
        buffer.seek(0)
        buffer.truncate()
        state.busy = False


def value_digest(value: object) -> bytes | None:
    """The fingerprint of a value's pickle, or :obj:`None` when it cannot be pickled."""
    try:
        dumped = _pickled(value)
    except Exception:  # noqa: BLE001 - a value pickle refuses is encoded as always
        return None
    return hashlib.blake2b(dumped, digest_size=16).digest()
