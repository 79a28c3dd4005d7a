"""The ``mongo-persistence`` command: check, migrate, export/import, recover, inspect."""
