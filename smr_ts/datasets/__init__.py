"""Data generators for benchmarks and tests. Everything is generated locally."""

from smr_ts.datasets.pendulum import PendulumData, PendulumSplit, load_pendulum, make_pendulum

__all__ = ["PendulumData", "PendulumSplit", "load_pendulum", "make_pendulum"]
