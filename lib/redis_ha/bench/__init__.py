"""Benchmarks that measure the procedures under simulated app traffic on a lab of their own."""
