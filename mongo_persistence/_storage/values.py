"""An unchanged entity found before it is encoded: the fingerprint of its value in memory.

PTB hands over a deep copy of every entity it marked, changed or not; encoding it only to find
that nothing changed costs a walk of the codec and a BSON encoding. Once a value was found
unchanged and was plain (its BSON holds no codec tag: it is made of ``dict`` with ``str`` keys,
``list``, ``str``, ``int``, ``float``, ``bool``, ``None``, ``bytes`` and UTC ``datetime``, of
exactly these types), the fingerprint of its pickle stands for it: an equal pickle is a value of
the same types and values, hence the same BSON, so the next equal value is skipped at once.

The pickle is made in memory and hashed, never stored nor loaded. A value that cannot be pickled,
or holds other types, is encoded as always.
"""

from __future__ import annotations

import hashlib
import pickle
from typing import Final

__all__ = ["value_digest"]

_PROTOCOL: Final = pickle.HIGHEST_PROTOCOL


def value_digest(value: object) -> bytes | None:
    """The fingerprint of a value's pickle, or :obj:`None` when it cannot be pickled."""
    try:
        dumped = pickle.dumps(value, protocol=_PROTOCOL)
    except Exception:  # noqa: BLE001 - a value pickle refuses is encoded as always
        return None
    return hashlib.blake2b(dumped, digest_size=16).digest()
