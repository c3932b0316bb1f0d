"""Helpers the tests, benchmarks and reliability scripts share (not shipped in the wheel)."""
