"""Benchmarks of mongo_persistence against PTB's own persistences, another MongoDB persistence and
plain PyMongo (the floor). Run ``python -m bench`` (``--quick`` for a smoke run); results go to
``bench/RESULTS.md``.
"""
