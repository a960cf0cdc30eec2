"""Data generators for benchmarks and tests. Everything is generated locally."""

__all__ = ["PendulumData", "PendulumSplit", "load_pendulum", "make_oscillators", "make_pendulum"]


def __getattr__(name):
    # Imported on first use (PEP 562) so that `python -m smr_ts.datasets.pendulum` does not find
    # the module already imported by its own package, which runpy warns about.
    if name == "make_oscillators":
        from smr_ts.datasets.oscillators import make_oscillators

        return make_oscillators
    if name in __all__:
        from smr_ts.datasets import pendulum

        return getattr(pendulum, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
