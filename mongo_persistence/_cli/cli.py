"""The ``mongo-persistence`` command (also ``python -m mongo_persistence``).

Commands: ``migrate`` (from PTB's PicklePersistence or DictPersistence JSON), ``inspect``,
``check``, ``export``, ``import``, ``recover``, ``upgrade``, ``purge`` and ``shell``. Every
command takes ``--uri`` (or the environment variable ``MONGODB_URI``), ``--database``,
``--namespace`` and ``--timeout``. Passwords are never printed. Expected errors end with a
one-line message and exit status 1 (2 for a wrong command line).

This module puts the command together; each command group lives in a module of its own:
:mod:`~mongo_persistence._cli.migrating`, :mod:`~mongo_persistence._cli.inspecting`,
:mod:`~mongo_persistence._cli.checking`, :mod:`~mongo_persistence._cli.backup` (export, import,
recover) and :mod:`~mongo_persistence._cli.maintenance` (upgrade, purge, shell).
"""

from __future__ import annotations

# Importing a command module registers its commands on the group.
from mongo_persistence._cli import backup, checking, inspecting, maintenance, migrating
from mongo_persistence._cli.app import main

__all__ = ["main"]

COMMAND_MODULES = (migrating, inspecting, checking, backup, maintenance)
"""The modules whose commands make up :func:`main`."""

if __name__ == "__main__":  # pragma: no cover
    main()
