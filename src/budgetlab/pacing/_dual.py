"""A budget pacer by dual descent on the price of spend.

With a budget ``B`` for ``N`` requests, the best fixed rule for requests drawn alike is the one
whose price ``lambda`` makes the expected spend per request ``B / N`` (Lagrangian duality: each
request maximises accuracy minus ``lambda`` times spend). That price is unknown and moves when
the stream's difficulty drifts, so it is learned online, as in dual mirror descent for online
allocation (Balseiro, Lu and Mirrokni, 2020): after each request the log-price moves by ``step``
times the request's relative overspend ``(spent - target) / target``. The target is what is left
per request left, so an early overspend raises the price for the rest of the stream, and a
stream that turned out easy lowers it. The price is bounded to ``[min_price, max_price]``.

:meth:`BudgetPacer.allowance` is the hard guarantee: a request may spend what is left minus
``min_spend`` for every request still to come, so the budget is never exceeded and no later
request is starved of its minimum. Requests that overlap (a server answering several at once)
take a :class:`Ticket` and reserve each draw's bound before it is sent, as the run loop does: the
same guarantee then holds with any number in flight. The state (spend, requests served, price) is a small dict;
:meth:`BudgetPacer.save` writes it atomically, so a restarted service paces on from where it
stopped.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budgetlab.errors import InputError

__all__ = ["BudgetPacer", "Ticket"]

_STATE_VERSION = 1


def _whole(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"pacer {name} must be a whole number >= {minimum}, got {name}={value!r}")
    return value


def _positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"pacer {name} must be a number {bound}, got {name}={value!r}")
    return float(value)


@dataclass
class Ticket:
    """One request in flight: what it has reserved and spent."""

    spent: float = 0.0
    reserved: float = 0.0
    drawing: bool = False
    ended: bool = False


class BudgetPacer:
    """Pace ``budget`` (samples, tokens or dollars: one unit throughout) over ``requests``
    expected requests; see the module docstring. ``price``: the starting price (accuracy per
    unit), e.g. from :func:`budgetlab.pacing.calibrate_price`; ``min_spend``: what any request
    spends at the least (one sample's worth), reserved for every request still to come."""

    def __init__(
        self,
        budget: float,
        requests: int,
        *,
        price: float = 1e-3,
        min_spend: float = 1.0,
        step: float = 0.2,
        min_price: float | None = None,
        max_price: float | None = None,
        spent: float = 0.0,
        served: int = 0,
    ) -> None:
        self.budget = _positive("budget", budget)
        self.requests = _whole("requests", requests, 1)
        self.min_spend = _positive("min_spend", min_spend, allow_zero=True)
        self.step = _positive("step", step, allow_zero=True)  # 0: a fixed price (a static rule, still guarded)
        # The price is accuracy per unit of spend: a sample costs price x its spend in accuracy, which
        # matters between about 1e-6 and 1. By default the range is that, per unit of one sample's
        # spend (min_spend): a dollar budget whose samples cost $0.00001 needs prices up to 1e5.
        scale = self.min_spend if self.min_spend > 0 else 1.0
        self.min_price = _positive("min_price", 1e-6 / scale if min_price is None else min_price)
        self.max_price = _positive("max_price", 1.0 / scale if max_price is None else max_price)
        if self.min_price > self.max_price:
            raise InputError(f"pacer needs min_price <= max_price, got min_price={self.min_price:g}, max_price={self.max_price:g}")
        start = _positive("price", price)
        if self.min_spend * requests > self.budget + 1e-9:
            raise InputError(
                f"a budget of {budget:g} cannot give each of {requests} requests its minimum of {min_spend:g}; "
                f"raise the budget to at least {min_spend * requests:g} or pace fewer requests"
            )
        self.spent = _positive("spent", spent, allow_zero=True)
        self.served = _whole("served", served, 0)
        self._log_price = math.log(min(max(start, self.min_price), self.max_price))
        self._reserved = 0.0  # reserved by requests in flight, not yet spent
        self._drawing = 0  # requests in flight that have drawn (their minimum is no longer held for them)

    @property
    def price(self) -> float:
        return math.exp(self._log_price)

    @property
    def remaining(self) -> float:
        return max(self.budget - self.spent, 0.0)

    def target(self) -> float:
        """What each request still to come may spend on average: what is left per request left."""
        return self.remaining / max(self.requests - self.served, 1)

    def allowance(self) -> float:
        """The most a request starting now may spend (requests answered one at a time)."""
        return self.headroom(Ticket())

    def record(self, spent: float) -> None:
        """A request answered on its own (not through a :class:`Ticket`) spent ``spent``."""
        spent = _positive("spent", spent, allow_zero=True)
        self.spent += spent
        self.end(Ticket(spent=spent))

    def expect(self, requests: int, *, within_budget: bool = False) -> None:
        """Revise how many requests the budget is for (in all, those served included), e.g. from
        the arrival rate when the budget is for a period of time rather than a count
        (:class:`~budgetlab.pacing.ArrivalForecast`). ``within_budget``: expect at most as many
        as what is left can still give their minimum (later ones are refused as they come)
        instead of raising, and at least one more than served."""
        _whole("requests", requests, 1)
        if within_budget:
            affordable = self.served + int(self.remaining // self.min_spend + 1e-9) if self.min_spend > 0 else requests
            requests = max(min(max(requests, self.served + 1), affordable), self.served, 1)
        later = max(requests - self.served, 0)
        if later * self.min_spend > self.remaining + 1e-9:
            raise InputError(
                f"{self.remaining:g} left cannot give each of {later} more requests its minimum of {self.min_spend:g}; "
                f"expect at most {self.served + int(self.remaining // self.min_spend) if self.min_spend else requests} requests"
            )
        self.requests = requests

    # ---- requests in flight together ----------------------------------------------------------
    def begin(self) -> Ticket:
        """Start a request that may overlap others: it reserves before each draw
        (:meth:`reserve`), settles after it (:meth:`settle`) and ends with :meth:`end`."""
        return Ticket()

    def headroom(self, ticket: Ticket) -> float:
        """What ``ticket`` may reserve now: what is neither spent nor reserved, less
        ``min_spend`` for every request that has not drawn yet (its own included only once it
        has drawn: a request's first draw may use its own minimum)."""
        waiting = max(self.requests - self.served - self._drawing, 0)
        own = self.min_spend if not ticket.drawing and waiting > 0 else 0.0
        return max(self.budget - self.spent - self._reserved - waiting * self.min_spend + own, 0.0)

    def reserve(self, ticket: Ticket, amount: float) -> bool:
        """Reserve ``amount`` for a draw of ``ticket``'s request; False (nothing reserved) when
        it does not fit."""
        if amount > self.headroom(ticket) + 1e-9:
            return False
        if not ticket.drawing:
            ticket.drawing = True
            self._drawing += 1
        ticket.reserved += amount
        self._reserved += amount
        return True

    def settle(self, ticket: Ticket, reserved: float, spent: float) -> None:
        """A draw that had reserved ``reserved`` spent ``spent`` (at most that)."""
        ticket.reserved -= reserved
        self._reserved -= reserved
        ticket.spent += spent
        self.spent += spent

    def end(self, ticket: Ticket) -> None:
        """The request is answered (or failed): its reservations are freed, the price moves."""
        if ticket.ended:
            return
        ticket.ended = True
        self._reserved -= ticket.reserved
        ticket.reserved = 0.0
        if ticket.drawing:
            self._drawing -= 1
        target = (self.remaining + ticket.spent) / max(self.requests - self.served, 1)  # as it was before its spend
        self.served += 1
        if target > 0:
            # Relative overspend, bounded so one outlier request moves the price by at most e^(2 step).
            error = min(max((ticket.spent - target) / target, -1.0), 2.0)
            low, high = math.log(self.min_price), math.log(self.max_price)
            self._log_price = min(max(self._log_price + self.step * error, low), high)

    # ---- state ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": _STATE_VERSION, "budget": self.budget, "requests": self.requests, "price": self.price,
            "min_spend": self.min_spend, "step": self.step, "min_price": self.min_price,
            "max_price": self.max_price, "spent": self.spent, "served": self.served,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BudgetPacer:
        if not isinstance(data, dict) or data.get("version") != _STATE_VERSION:
            raise InputError(f"pacer state is not a version-{_STATE_VERSION} pacer dict: {str(data)[:80]!r}")
        fields = {k: v for k, v in data.items() if k != "version"}
        try:
            return cls(**fields)
        except TypeError as err:
            raise InputError(f"pacer state has unknown or missing fields ({err}); it was not written by BudgetPacer.save") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state atomically (a crash leaves the old state or the new one, whole)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.to_dict(), f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BudgetPacer:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise InputError(f"pacer state {path} does not exist; start a new BudgetPacer(budget, requests)") from None
        except json.JSONDecodeError as err:
            raise InputError(f"pacer state {path} is not valid JSON ({err.msg} at line {err.lineno}); delete it to start over") from None
        return cls.from_dict(data)

    def __repr__(self) -> str:
        return (
            f"BudgetPacer(spent {self.spent:g} of {self.budget:g}, {self.served} of {self.requests} requests, "
            f"price {self.price:.3g})"
        )
