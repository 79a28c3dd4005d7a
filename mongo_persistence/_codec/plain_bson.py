"""Values read as BSON that hold no codec tag: decoded by PyMongo's C decoder, without a walk.

The decoder's walk (:mod:`~mongo_persistence._codec.decoder`) does three things to a value that
holds no tagged sub-document: BSON int64 (``Int64``) becomes ``int``, a date becomes an aware UTC
``datetime``, and nesting deeper than :data:`~mongo_persistence._codec.decoder.MAX_DECODE_DEPTH`
is refused. PyMongo's C decoder does the first two itself with :data:`PLAIN_OPTIONS`, and the BSON
bytes bound the third: every nested document or array is an element whose type byte is ``3`` or
``4``, so a value holding fewer such bytes than the limit cannot be nested deeper. A value whose
BSON holds the tag's name as a key may hold tagged values: it gets the walk.

The eager load reads documents as BSON (:func:`split_documents`): a whole document holding no tag is
decoded here in one call, and its ``data`` field's BSON, which the tracker keeps, is cut out of
the document's (:func:`data_bson`) only when a write needs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import bson
from bson.codec_options import DEFAULT_CODEC_OPTIONS, CodecOptions, TypeDecoder, TypeRegistry
from bson.errors import InvalidBSON
from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument

from mongo_persistence._codec.base import _UTC, TAG
from mongo_persistence._codec.decoder import MAX_DECODE_DEPTH

__all__ = [
    "DECODE_ERRORS",
    "PLAIN_OPTIONS",
    "data_bson",
    "decode_plain",
    "document_id",
    "holds_tag",
    "read_plainly",
    "split_documents",
    "undecodable",
]

_TAG_KEY: Final = TAG.encode() + b"\x00"
"""The tag's name as a BSON key (a C string): in the bytes of every tagged sub-document."""
_DOCUMENT, _ARRAY = 3, 4
DECODE_ERRORS: Final = (InvalidBSON, OverflowError, ValueError)
"""What :func:`bson.decode` raises for BSON that holds what Python cannot (a date past year 9999,
invalid UTF-8)."""
_EMPTY: Final = bson.encode({})
_MIN_SIZE: Final = len(_EMPTY)


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
    except DECODE_ERRORS:
        return None
    return decoded


def split_documents(batch: bytes) -> Iterator[bytes]:
    """The BSON of each document of a batch read as BSON (documents one after the other).

    Each document's BSON starts with its size (an int32, little-endian).
    """
    end = len(batch)
    position = 0
    while position < end:
        size = int.from_bytes(batch[position : position + 4], "little")
        if size < _MIN_SIZE or position + size > end:
            raise InvalidBSON("a document of the batch is cut short")
        yield batch[position : position + size]
        position += size


def data_bson(document: bytes) -> bytes:
    """The BSON of a document's ``data`` field, cut out of the document's BSON.

    An empty document's when it has none.

    Raises:
        :exc:`ValueError`: Its ``data`` is not a BSON document.
    """
    fields = RawBSONDocument(document)
    if "data" not in fields:
        return _EMPTY
    data = fields["data"]
    if not isinstance(data, RawBSONDocument):
        raise ValueError("its data field is not a document")
    return bytes(data.raw)


def undecodable(exc: BaseException) -> str:
    """Why a document PyMongo cannot decode is refused: the error's type, never its message.

    The message quotes the value (``year 275760 is out of range``).
    """
    return f"its BSON cannot be decoded in Python ({type(exc).__name__})"


def document_id(document: bytes) -> Any:
    """The ``_id`` of a document's BSON, or :obj:`None` when its top level cannot be decoded."""
    try:
        return RawBSONDocument(document).get("_id")
    except DECODE_ERRORS:
        return None
