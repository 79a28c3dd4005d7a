"""The document head of a fingerprint, built from cached bytes, is the BSON bson.encode writes."""

from __future__ import annotations

from typing import Any

import bson
import pytest

from mongo_persistence._storage.fingerprints import document_head, shared_extra

IDS = [0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**40, 2**63 - 1, -(2**63), "bot_data"]
EXTRAS = [{"format": 2}, {"format": 2, "data_version": 7}, {"name": "conv", "format": 2}]


@pytest.mark.parametrize("doc_id", IDS)
@pytest.mark.parametrize("extra", EXTRAS)
def test_the_head_is_the_bson_of_id_and_sorted_fields(doc_id: Any, extra: dict[str, Any]) -> None:
    expected = bson.encode({"_id": doc_id, **dict(sorted(extra.items()))})
    assert document_head(doc_id, shared_extra(extra)) == expected  # cached bytes
    assert document_head(doc_id, dict(extra)) == expected  # not shared: encoded


def test_an_id_bson_cannot_hold_is_refused_as_before() -> None:
    with pytest.raises(OverflowError):
        document_head(2**64, shared_extra({"format": 2}))
    with pytest.raises(OverflowError):
        bson.encode({"_id": 2**64})
