"""The README's "What the documents look like" block, as the real mongosh prints it.

A real PTB Application (offline: only the Telegram servers are replaced by a stand-in) with a
MongoPersistence handles a few messages; then mongosh prints the documents it wrote. Only
``updated_at`` and ``expire_at`` are set to fixed dates first, so that the block does not change
from run to run.

    python scripts/readme_documents.py            # prints the block
    python scripts/readme_documents.py --check    # compares it with README.md (exit 1 if not)
    python scripts/readme_documents.py --write    # rewrites it in README.md

mongosh comes from ``make mongosh`` (.cache/mongosh) or ``$MONGOSH``; the server from
``MONGODB_URI``, else a local SecantusDB is started.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dtm
import os
import subprocess
import sys
import zoneinfo
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update  # noqa: E402
from telegram.ext import (  # noqa: E402
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from mongo_persistence import MongoPersistence  # noqa: E402
from tests.helpers.local_server import LocalServer  # noqa: E402
from tests.ptb_offline import build_application, message_update  # noqa: E402

README = ROOT / "README.md"
BEGIN = "<!-- documents: scripts/readme_documents.py -->"
END = "<!-- /documents -->"
DATABASE = "mybot"
MONGOSH = Path(
    os.environ.get("MONGOSH", ROOT / ".cache" / "mongosh" / "node_modules" / ".bin" / "mongosh")
)
UTC = dtm.timezone.utc
ASK_AGE = 1


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    assert context.user_data is not None and context.chat_data is not None
    context.user_data["name"] = "Ada"
    context.user_data["signup"] = dtm.datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
    context.user_data["tags"] = {"math", "engines"}
    context.chat_data["last_from"] = update.effective_user
    context.chat_data["last_seen"] = dtm.datetime(2026, 11, 27, 0, 18, 27, 303810, tzinfo=UTC)
    context.chat_data["meeting"] = dtm.datetime(
        2026, 12, 24, 18, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")
    )
    context.bot_data.setdefault("users", set()).add(update.effective_user.id)  # type: ignore[union-attr]
    return ASK_AGE


async def got_age(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    assert context.user_data is not None and update.message is not None
    context.user_data["age"] = update.message.text
    context.user_data["birthday"] = dtm.date(1996, 5, 17)
    context.user_data["timeout"] = dtm.timedelta(minutes=90)
    button = InlineKeyboardButton("Pay 5", callback_data=("pay", 5))  # arbitrary callback data
    await update.message.reply_text("Thanks!", reply_markup=InlineKeyboardMarkup([[button]]))
    return ConversationHandler.END


async def run_bot(uri: str) -> None:
    persistence = MongoPersistence(uri, database=DATABASE, expire_after={"users": "180d"})
    app, _ = build_application(persistence, arbitrary_callback_data=True)
    app.add_handler(
        ConversationHandler(
            entry_points=[CommandHandler("start", start)],
            states={ASK_AGE: [MessageHandler(filters.TEXT & ~filters.COMMAND, got_age)]},
            fallbacks=[],
            name="signup",
            persistent=True,
        )
    )
    async with app:
        await app.process_update(message_update(app, "/start"))
        await app.update_persistence()  # stopped in the middle of the conversation
        await app.process_update(message_update(app, "30"))
        await app.process_update(message_update(app, "/start", user_id=43))
    # the second /start (user 43) is still in the conversation


SHOWN = [
    "db.user_data.findOne({_id: 42})",
    "db.chat_data.findOne({_id: 42})",
    "db.bot_data.findOne()",
    "db.conversations.find()",
    "db.callback_data.findOne()",
]

SCRIPT = """
const fixed = ISODate('2026-11-27T00:18:27.306Z');
// the callback data cache's random ids and its access time, made stable for the README
const cache = db.callback_data.findOne();
cache.data.keyboards.forEach((keyboard, i) => {
  keyboard.keyboard = 'f3a1c5e0b2d94c7e8a6b1d2c3e4f5a6' + i;
  keyboard.access_time = 1795738707.3061;
  const buttons = {};
  Object.keys(keyboard.buttons).forEach(
    (id, j) => { buttons['9b8c7d6e5f4a4b3c8d2e1f0a9b8c7d6' + j] = keyboard.buttons[id]; });
  keyboard.buttons = buttons;
});
db.callback_data.replaceOne({_id: cache._id}, cache);
for (const name of db.getCollectionNames()) {
  db.getCollection(name).updateMany({}, [{$set: {updated_at: fixed}}]);
  db.getCollection(name).updateMany({expire_at: {$exists: true}},
    {$set: {expire_at: ISODate('2027-05-26T00:00:00.000Z')}});
}
""" + "".join(
    f"print({query!r}); print('=>'); printjson({query}{'.toArray()' if '.find(' in query else ''});"
    for query in SHOWN
)


def mongosh(uri: str, script: str) -> str:
    """Runs mongosh on the bot's database; returns what it printed."""
    if not MONGOSH.exists():
        raise RuntimeError(f"mongosh not found at {MONGOSH}: run `make mongosh`")
    target = f"{uri.rstrip('/')}/{DATABASE}" if "?" not in uri else uri
    if "?" not in target:
        target += "?directConnection=true"
    done = subprocess.run(
        [str(MONGOSH), target, "--quiet", "--norc", "--eval", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"mongosh failed ({done.returncode}): {done.stderr.strip()[:500]}")
    return done.stdout


def block(uri: str) -> str:
    """The README block: each query as typed at mongosh's prompt, and what it printed."""
    asyncio.run(run_bot(uri))
    text = mongosh(uri, SCRIPT).replace("\n=>\n", "\n")
    for query in SHOWN:
        text = text.replace(f"{query}\n", f"\n{DATABASE}> {query}\n", 1)
    return "```js\n" + text.strip() + "\n```"


def readme_block(readme: str) -> str:
    """The block now in the README, between its markers."""
    start = readme.index(BEGIN) + len(BEGIN)
    return readme[start : readme.index(END)].strip()


def generate() -> str:
    """Runs the bot against MONGODB_URI, else a local server, and returns the block."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        return block(uri)
    with LocalServer() as server:
        return block(server.uri)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="compare with README.md")
    parser.add_argument("--write", action="store_true", help="rewrite the block in README.md")
    args = parser.parse_args()
    text = generate()
    readme = README.read_text(encoding="utf-8")
    if args.write:
        old = readme_block(readme)
        README.write_text(readme.replace(old, text, 1), encoding="utf-8")
        print("README.md updated")
    elif args.check:
        if readme_block(readme) != text:
            print("README.md's documents block differs from what mongosh prints:\n" + text)
            return 1
        print("README.md's documents block is what mongosh prints")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
