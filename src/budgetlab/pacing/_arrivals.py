"""How many requests a budget for a period of time is for: a forecast from the arrival rate.

A pacer spreads its budget over a number of requests. A service's budget is often for a period
(five dollars a day), and how many requests the day brings is known only as they come. The
forecast starts from the user's guess and moves to the observed rate as the window fills:
the rate is a Gamma-Poisson posterior mean, with the guess counting as a tenth of the window
observed at the guessed rate, so that a burst in the first minutes does not swing it, and a
day's worth of evidence outweighs the guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from budgetlab.errors import InputError

__all__ = ["ArrivalForecast", "parse_duration"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``"90s"``, ``"30m"``, ``"24h"``, ``"7d"`` or plain seconds -> seconds."""
    value = str(text).strip().lower()
    scale = _UNITS.get(value[-1:], None)
    number = value[:-1] if scale is not None else value
    try:
        seconds = float(number) * (scale or 1.0)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise InputError(f"a window must be a positive duration such as 90s, 30m, 24h or 7d, got {text!r}")
    return seconds


@dataclass(frozen=True)
class ArrivalForecast:
    """Requests expected in a window of ``window`` seconds, ``guess`` of them before any came."""

    window: float
    guess: int
    prior_share: float = 0.1  # of the window, the guess counts as observed for this long

    def __post_init__(self) -> None:
        if not self.window > 0:
            raise InputError(f"the window must be positive seconds, got {self.window!r}")
        if isinstance(self.guess, bool) or not isinstance(self.guess, int) or self.guess < 1:
            raise InputError(f"the expected number of requests must be a whole number >= 1, got {self.guess!r}")

    def total(self, arrived: int, elapsed: float) -> int:
        """Requests in the whole window, ``arrived`` of them in its first ``elapsed`` seconds."""
        prior_seconds = self.prior_share * self.window
        rate = (self.guess / self.window * prior_seconds + arrived) / (prior_seconds + max(elapsed, 0.0))
        left = max(self.window - elapsed, 0.0)
        return max(arrived, 1, round(arrived + rate * left))
