"""One style of parameter checks for the whole package: scikit-learn's declarative constraints.

Every class or function that takes user settings declares a table ``{name: [constraints]}``
with :class:`~sklearn.utils._param_validation.Interval`, ``StrOptions`` and types, and checks
it once, up front, with :func:`check_params`. Errors are scikit-learn's
``InvalidParameterError`` (a ``ValueError`` and a ``TypeError``) naming the parameter, the
caller and what was expected.

scikit-learn keeps these helpers in a private module; ``pyproject.toml`` states the range of
scikit-learn versions they are tested with.
"""

from __future__ import annotations

from datetime import timedelta
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)

__all__ = [
    "Interval", "InvalidParameterError", "StrOptions", "check_params", "invalid", "non_negative_int",
    "positive_int", "positive_real", "probability",
]


def positive_int():
    return Interval(Integral, 1, None, closed="left")


def non_negative_int():
    return Interval(Integral, 0, None, closed="left")


def positive_real():
    """A finite float > 0 (the open interval excludes inf and NaN)."""
    return Interval(Real, 0, None, closed="neither")


def probability():
    """A float in [0, 1)."""
    return Interval(Real, 0, 1, closed="left")


def _numeric(constraint) -> bool:
    return isinstance(constraint, Interval)


def check_params(constraints: dict, params: dict, caller: str) -> None:
    """Check ``params`` against ``constraints``; bools are never accepted as numbers.

    Raises
    ------
    InvalidParameterError
        Naming the first parameter that fails, the caller and what it accepts.
    """
    # numpy's timedelta64 is an integer to Python's number types, so an interval check would compare it with a
    # float (a raw numpy error); checked as the duration it is, as are the standard library's timedeltas
    params = {k: pd.Timedelta(v) if isinstance(v, (np.timedelta64, timedelta)) else v for k, v in params.items()}
    validate_parameter_constraints(constraints, params, caller_name=caller)
    for name, options in constraints.items():
        value = params.get(name)
        if isinstance(value, (bool, np.bool_)) and options != "no_validation":
            if any(_numeric(c) for c in options) and not any(c in ("boolean", bool) for c in options):
                raise invalid(caller, f"The {name!r} parameter of {caller} must be a number, not a bool. "
                                      f"Got {value!r} instead.")


def invalid(caller: str, message: str) -> InvalidParameterError:
    """An ``InvalidParameterError`` for a rule a table cannot express (two parameters together)."""
    return InvalidParameterError(message if message.startswith("The ") else f"{caller}: {message}")
