"""``python -m mongo_persistence``: the ``mongo-persistence`` command."""

from mongo_persistence.cli import main

if __name__ == "__main__":
    main(prog_name="mongo-persistence")
