"""The PTB persistence: ``BasePersistence`` contract mapped onto the storage layer."""
