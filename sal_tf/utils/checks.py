"""Argument checks shared by the layers: integers with a lower bound, finite non-negative numbers.

Each raises `ValueError` naming the argument, what was expected and what was received.
"""

import math
import numbers


def check_int(value, name, minimum=1):
    """`value` as an int when it is an integer (not a bool) >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def check_non_negative(value, name):
    """`value` as a float when it is a finite number >= 0 (loss margins and weights)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a number >= 0. Received: {name}={value!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"`{name}` must be a finite number >= 0. Received: {name}={value}")
    return value
