"""The pacer contract: how much one request of a stream may spend, and at what price.

A stream of requests shares one budget (samples, tokens or dollars) over an expected number of
requests. A pacer sets a **price**: the accuracy that one unit of spend must be expected to buy.
A stopping rule that weighs accuracy against cost (:class:`budgetlab.policies.BayesStopping`,
whose ``cost`` is that price times the spend of a sample) then spends more on hard requests and
less on easy ones, and the pacer moves the price so that the budget lasts exactly to the end of
the stream. It also bounds each request (:meth:`Pacer.allowance`) so that the budget can never be
overspent and every later request keeps its minimum.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["Pacer"]


@runtime_checkable
class Pacer(Protocol):
    """Spends one budget over a stream of requests: sets the price each request's samples must
    beat, and guards the budget so that every later request can still get its first sample."""

    @property
    def price(self) -> float:
        """Accuracy per unit of spend that the next request's samples must be expected to buy."""
        ...

    def allowance(self) -> float:
        """The most the next request may spend (0: the budget is gone)."""
        ...

    def record(self, spent: float) -> None:
        """A request finished having spent ``spent``."""
        ...

    # Requests in flight together (see BudgetPacer): begin, reserve before a draw, settle, end.
    def begin(self) -> Any: ...

    def headroom(self, ticket: Any) -> float: ...

    def reserve(self, ticket: Any, amount: float) -> bool: ...

    def settle(self, ticket: Any, reserved: float, spent: float) -> None: ...

    def end(self, ticket: Any) -> None: ...
