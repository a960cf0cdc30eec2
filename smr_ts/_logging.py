"""The library's one channel for what a fit decided: the standard ``logging`` logger ``"smr_ts"``.

- INFO: a fit's start (what it read as targets and covariates, the horizon, the validation) and end
  (the epoch kept, what model selection kept and why);
- DEBUG: each epoch's metrics.

Like every library, ``smr_ts`` adds only a ``NullHandler``: an application shows the lines by
configuring logging (``logging.basicConfig(level=logging.INFO)``, or a handler on ``"smr_ts"``).
``SMRForecaster(verbose=1)`` shows the INFO lines of its own fits on stderr without that.
"""

from __future__ import annotations

import contextlib
import logging
import sys

__all__ = ["LOGGER_NAME", "logger", "showing_info"]

LOGGER_NAME = "smr_ts"
logger = logging.getLogger(LOGGER_NAME)
logger.addHandler(logging.NullHandler())


@contextlib.contextmanager
def showing_info(verbose: int):
    """While a fit runs with ``verbose >= 1``: the logger's INFO lines on stderr (DEBUG too with
    ``verbose >= 3``), besides wherever the application's own handlers send them."""
    if not verbose:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("smr_ts: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose >= 3 else logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
