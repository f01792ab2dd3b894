"""Benchmarks that print figures next to a baseline."""
