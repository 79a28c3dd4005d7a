"""The codec (pure): Python and Telegram values to BSON documents and back, no I/O."""
