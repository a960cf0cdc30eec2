"""Data generators for benchmarks and tests. Everything is generated locally."""
