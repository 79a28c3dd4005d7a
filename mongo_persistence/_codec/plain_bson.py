"""Values read as BSON that hold no codec tag: decoded by PyMongo's C decoder, without a walk.

The decoder's walk (:mod:`~mongo_persistence._codec.decoder`) does three things to a value that
holds no tagged sub-document: BSON int64 (``Int64``) becomes ``int``, a date becomes an aware UTC
``datetime``, and nesting deeper than :data:`~mongo_persistence._codec.decoder.MAX_DECODE_DEPTH`
is refused. PyMongo's C decoder does the first two itself with :data:`PLAIN_OPTIONS`, and the BSON
bytes bound the third: every nested document or array is an element whose type byte is ``3`` or
``4``, so a value holding fewer such bytes than the limit cannot be nested deeper. A value whose
BSON holds the tag's name as a key may hold tagged values: it gets the walk.
"""

from __future__ import annotations

from typing import Any, Final

import bson
from bson.codec_options import DEFAULT_CODEC_OPTIONS, CodecOptions, TypeDecoder, TypeRegistry
from bson.errors import InvalidBSON
from bson.int64 import Int64

from mongo_persistence._codec.base import _UTC, TAG
from mongo_persistence._codec.decoder import MAX_DECODE_DEPTH

__all__ = ["PLAIN_OPTIONS", "decode_plain", "holds_tag", "read_plainly"]

_TAG_KEY: Final = TAG.encode() + b"\x00"
"""The tag's name as a BSON key (a C string): in the bytes of every tagged sub-document."""
_DOCUMENT, _ARRAY = 3, 4


class _Int64AsInt(TypeDecoder):
    """BSON int64 as ``int``, as the decoder's walk returns it."""

    __slots__ = ()
    bson_type = Int64

    def transform_bson(self, value: Any) -> Any:
        return int(value)


PLAIN_OPTIONS: Final[CodecOptions[dict[str, Any]]] = CodecOptions(
    tz_aware=True, tzinfo=_UTC, type_registry=TypeRegistry([_Int64AsInt()])
)
"""How :func:`decode_plain` decodes: what the decoder's walk makes of an untagged value."""


def read_plainly(options: Any) -> bool:
    """Tells whether documents read with these codec options re-encode to what the server holds.

    Only PyMongo's defaults (``tz_aware`` and ``tzinfo`` aside: a date is an instant either way):
    another ``document_class``, UUID representation or type decoder gives other Python values,
    which the decoder's walk keeps as they are.
    """
    if not isinstance(options, CodecOptions):
        return False
    return options.with_options(tz_aware=False, tzinfo=None) == DEFAULT_CODEC_OPTIONS


def holds_tag(raw: bytes) -> bool:
    """Tells whether a BSON document may hold a tagged sub-document (its bytes hold the key)."""
    return _TAG_KEY in raw


def decode_plain(raw: bytes) -> dict[str, Any] | None:
    """The value of a BSON document holding no tag, as the decoder's walk would return it.

    Returns:
        The decoded document, or :obj:`None` when it may hold a tag or be nested too deeply
        (then the walk decides).
    """
    if _TAG_KEY in raw or raw.count(_DOCUMENT) + raw.count(_ARRAY) >= MAX_DECODE_DEPTH:
        return None
    try:
        decoded: dict[str, Any] = bson.decode(raw, codec_options=PLAIN_OPTIONS)
    except (InvalidBSON, OverflowError, ValueError):
        return None
    return decoded
