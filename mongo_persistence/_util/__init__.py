"""Helpers shared by every layer: capped loggers, URI redaction, name rules."""
