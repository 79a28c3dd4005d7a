"""A bot's own class and its TypeCodec, for the ``--pythonpath``/``--codec`` test of the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from mongo_persistence import TypeCodec


@dataclass(frozen=True)
class Point:
    x: int
    y: int


POINT_CODEC = TypeCodec(
    Point, "Point", encode=lambda p: {"x": p.x, "y": p.y}, decode=lambda d: Point(**d)
)
