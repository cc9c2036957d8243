"""Pacing: spend one budget over a stream of requests, more on hard ones, and never run out early.

A :class:`BudgetPacer` sets a price on spend (accuracy per sample, token or dollar) and learns it
online so that the budget lasts exactly to the end of the stream; a stopping rule that weighs
accuracy against that price (:class:`budgetlab.policies.BayesStopping`) decides how many samples
each request draws. :class:`PacedSolver` answers live requests through any backend;
:func:`simulate_paced_stream` replays a stream over recorded samples; :func:`calibrate_price`
gives the pacer a starting price from a calibration split; a :class:`SampleJournal` keeps every
sample drawn, so that a request cut short by a crash resumes without paying for them again; an
:class:`ArrivalForecast` turns a budget for a period of time into the requests it is for.
"""

from __future__ import annotations

from budgetlab.pacing._arrivals import ArrivalForecast, parse_duration
from budgetlab.pacing._base import Pacer
from budgetlab.pacing._calibrate import calibrate_price, prior_problems
from budgetlab.pacing._dual import BudgetPacer, Ticket
from budgetlab.pacing._journal import SampleJournal
from budgetlab.pacing._priced import priced
from budgetlab.pacing._simulate import PacedStream, simulate_paced_stream
from budgetlab.pacing._solver import PacedAnswer, PacedSolver, sample_bound

__all__ = [
    "ArrivalForecast",
    "BudgetPacer",
    "PacedAnswer",
    "PacedSolver",
    "PacedStream",
    "Pacer",
    "SampleJournal",
    "Ticket",
    "calibrate_price",
    "parse_duration",
    "priced",
    "prior_problems",
    "sample_bound",
    "simulate_paced_stream",
]
