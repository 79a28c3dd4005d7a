"""``mongo-persistence check``: the documents of a namespace that the bot cannot load.

Every document is decoded by the bot's own rules (the codec, and
:func:`~mongo_persistence._persistence.shapes.conversation_key`,
:func:`~mongo_persistence._persistence.shapes.callback_data_from` and
:func:`~mongo_persistence._persistence.shapes.is_scalar_class` for the shapes the bot checks when
it loads), so the command reports exactly the documents the bot refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mongo_persistence._cli.app import CliError, main, plural, run
from mongo_persistence._cli.options import codec_options, connection_options, load_codec
from mongo_persistence._cli.target import Opened, make_target, open_target
from mongo_persistence._codec.codec import Codec
from mongo_persistence._errors import DecodingError
from mongo_persistence._persistence.shapes import (
    callback_data_from,
    conversation_key,
    is_scalar_class,
)
from mongo_persistence._storage.entity import COLLECTIONS


@main.command(name="check")
@codec_options
@connection_options
def check_command(
    *,
    codec_refs: tuple[str, ...],
    pickle_fallback: bool,
    pythonpath: tuple[Path, ...],
    uri: str,
    database: str | None,
    namespace: str | None,
    timeout: float,
) -> None:
    """List the documents of a namespace that the bot cannot load.

    Every document is decoded as the bot loads it (give the same --codec options as the bot);
    nothing is written and nothing is imported. Each bad document is listed with its entity, the
    path of the value at fault and what is wrong, never its content. Exit status 1 when there is
    any (MongoPersistence(on_bad_document="raise") would not start; "skip" starts without them).
    """
    target = make_target(uri, database, namespace, timeout)
    codec = load_codec(codec_refs, pythonpath, pickle_fallback=pickle_fallback)

    async def check() -> tuple[int, list[str]]:
        async with open_target(target) as opened:
            click.echo(f"Checking {target.describe(opened.name)}")
            return await _check_documents(opened, codec)

    checked, problems = run(target, check())
    for problem in problems:
        click.echo(f"  {problem}")
    click.echo(f"Checked {plural(checked, 'document')}: {len(problems) or 'none'} bad.")
    if problems:
        raise CliError(f"{plural(len(problems), 'document')} cannot be loaded (listed above).")


async def _check_documents(opened: Opened, codec: Codec) -> tuple[int, list[str]]:
    """Decodes every document of the namespace; returns (count, problems)."""
    checked = 0
    problems: list[str] = []
    for kind in COLLECTIONS:
        async for doc in opened.documents(kind):
            checked += 1
            problem = document_problem(codec, kind, doc)
            if problem is not None:
                problems.append(problem)
    return checked, problems


def document_problem(codec: Codec, kind: str, doc: dict[str, Any]) -> str | None:
    """What keeps the bot from loading a document, or :obj:`None`.

    Args:
        codec (:class:`mongo_persistence.Codec`): The bot's codec.
        kind (:obj:`str`): The document's collection (``user_data``...) without the namespace.
        doc (:obj:`dict`): The document.
    """
    doc_id = doc.get("_id")
    entity = f"{kind}[{doc_id!r}]" if kind in ("user_data", "chat_data") else kind
    try:
        if kind in ("user_data", "chat_data") and (type(doc_id) is not int):
            return (
                f"{entity}: its _id is a {type(doc_id).__name__}, not an int (the bot ignores it)"
            )
        if kind == "conversations":
            entity = f"conversations[{doc_id!r}]"
            if "state" not in doc:
                return f"{entity}: not a conversation document (a 'key' array and a 'state')"
            conversation_key(codec, doc, f"conversations[{doc.get('name')!r}]")
            codec.decode(doc["state"], entity=entity)
            return None
        if not isinstance(doc.get("data", {}), dict):
            return _plain_value_problem(codec, kind, doc, entity)
        data = codec.decode(doc.get("data", {}), entity=entity)
        if kind == "callback_data":
            callback_data_from(data)  # the shape the bot checks when it loads the cache
        if "attrs" in doc:
            codec.decode(doc["attrs"], entity=f"{entity}.attrs")
    except DecodingError as exc:
        return f"{exc.entity}{exc.path}: {exc.reason}"
    return None


def _plain_value_problem(codec: Codec, kind: str, doc: dict[str, Any], entity: str) -> str | None:
    """What is wrong with a document whose ``data`` is no document, or :obj:`None`.

    Such is the document of a data class holding a plain value (``context_types`` with
    ``user_data=int``...: ``{_id, data: <value>}``); the bot's rule for those classes is
    :func:`~mongo_persistence._persistence.shapes.is_scalar_class`. Which class the bot has, the
    command cannot know: any value of such a class is accepted.

    Raises:
        :class:`mongo_persistence.DecodingError`: The value cannot be decoded.
    """
    if kind in ("user_data", "chat_data", "bot_data"):
        value = codec.decode(doc["data"], entity=entity)
        if is_scalar_class(type(value)):
            return None
    return f"{entity}: its 'data' field is {type(doc['data']).__name__}, not a document"
