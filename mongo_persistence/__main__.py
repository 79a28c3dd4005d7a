"""``python -m mongo_persistence`` and the ``mongo-persistence`` command.

The command needs the ``cli`` extra (``pip install "mongo-persistence[cli]"``, for click and
tqdm); without it, it says so and exits with status 1. This module imports neither before it can
say so.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Final

__all__ = ["main"]

CLI_EXTRA: Final = "cli"
"""The extra that brings the command's dependencies."""
_CLI_MODULES: Final = frozenset({"click", "tqdm"})


def main(args: Sequence[str] | None = None) -> None:
    """Runs the ``mongo-persistence`` command, or says which extra it needs.

    Args:
        args (Sequence[:obj:`str`], optional): The command line after the program's name;
            ``sys.argv[1:]`` by default.

    Raises:
        :class:`SystemExit`: Always, with the command's exit status.
    """
    try:
        from mongo_persistence._cli.cli import main as cli_main
    except ModuleNotFoundError as exc:
        if exc.name not in _CLI_MODULES:
            raise
        sys.stderr.write(
            f"mongo-persistence: the command needs {exc.name}, which comes with the "
            f"[{CLI_EXTRA}] extra:\n"
            f'    pip install "mongo-persistence[{CLI_EXTRA}]"\n'
        )
        raise SystemExit(1) from None
    cli_main(args=None if args is None else list(args), prog_name="mongo-persistence")


if __name__ == "__main__":
    main()
