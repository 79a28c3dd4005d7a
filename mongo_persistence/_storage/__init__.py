"""The write and read machinery (I/O): what to send, batching, retries, deadlines, the journal."""
