"""Helpers of the reliability, security and fuzz tests (comparator, servers, a bot to crash)."""
