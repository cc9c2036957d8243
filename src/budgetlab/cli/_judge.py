"""``budgetlab judge``: judge a run's samples again, without drawing (or paying for) them again."""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
from typing import Any

from rich.console import Console

from budgetlab.cli._render import plural
from budgetlab.errors import BudgetlabError

__all__ = ["add_judge_parser", "cmd_judge"]


def add_judge_parser(sub: Any) -> None:
    p = sub.add_parser(
        "judge",
        help="judge a run's samples again without drawing them again: those its verifier left unjudged, or --all",
        description="Judges the samples a run drew but could not judge (its verifier failed: fix it first), or with "
        "--all every sample it drew, e.g. after fixing or changing the verifier. Nothing is drawn; a judge model's "
        "tokens and dollars and the seconds spent judging are added to the run's spend.",
    )
    p.add_argument("name", metavar="RUN", help="run name (list them with: budgetlab runs)")
    p.add_argument("--verifier", metavar="SPEC",
                   help="judge with this verifier instead of the run's, e.g. math or code:timeout=10; the run records "
                   "it, so resuming the run judges its new samples alike")  # fmt: skip
    p.add_argument("--all", action="store_true", help="judge every sample the run drew, not only the unjudged ones")
    p.add_argument("--budget", metavar="SPEC",
                   help="limits for this judging in place of the run's (which it keeps for drawing), as run "
                   "--budget takes them, e.g. dollars=10 or none: caps on the run's total spend, judging included, as "
                   "report shows it; a samples limit does not apply (nothing is drawn). Judging stops, keeping what it "
                   "judged, before a batch would pass a limit the verifier spends on (a judge model's tokens and "
                   "dollars; seconds)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print what was judged as JSON")
    p.add_argument("--store", default="budgetlab.db", help="store file or SQLAlchemy URL (default: budgetlab.db)")


def cmd_judge(args: argparse.Namespace, console: Console) -> int:
    from budgetlab.analysis._report import scores_only_note
    from budgetlab.cli._main import _open_existing
    from budgetlab.cli._progress import ProgressBar
    from budgetlab.core.run import RunState
    from budgetlab.runner import judge_again

    with _open_existing(args.store) as store:
        show = console.is_terminal and not args.json
        try:
            with ProgressBar(console, f"judging {args.name}") if show else contextlib.nullcontext() as bar:
                outcome = judge_again(store, args.name, verifier=args.verifier, every=args.all, budget=args.budget,
                                      on_progress=bar)  # fmt: skip
        except KeyboardInterrupt:
            # Verdicts are recorded a batch at a time: those finished before Ctrl-C are in the store.
            again = f"budgetlab judge {shlex.quote(args.name)} --store {shlex.quote(args.store)}" + (" --all" if args.all else "")
            again += f" --verifier {shlex.quote(args.verifier)}" if args.verifier is not None else ""
            again += f" --budget {shlex.quote(args.budget)}" if args.budget is not None else ""
            console.print(f"interrupted; the verdicts recorded so far are kept. Judge the rest with: {again}",
                          highlight=False, markup=False, soft_wrap=True)  # fmt: skip
            raise
        except BudgetlabError as exc:
            _point_at_store(exc, args)
            raise
        state = store.get_run(args.name).state
    # A score is no verdict: pass@k and maj@k would count none of these samples.
    scores_only = outcome.judged and outcome.scores_only == outcome.judged
    warnings = [scores_only_note(args.name, outcome.verifier, outcome.judged)] if scores_only else []
    if args.json:
        print(json.dumps({**outcome.to_dict(), "warnings": warnings}, indent=2))
        return 0
    run, where = shlex.quote(args.name), shlex.quote(args.store)
    if not outcome.judged:
        more = "" if args.all else " (--all judges every sample again)"
        console.print(f"run {args.name!r} has no unjudged samples: nothing judged{more}", highlight=False, markup=False, soft_wrap=True)
        return 0
    verdicts = [f"{outcome.correct:,} correct", f"{outcome.wrong:,} wrong"]
    if outcome.unknown:
        why = "a score only" if outcome.scores_only == outcome.unknown else "no reference to compare with?"
        verdicts.append(f"{outcome.unknown:,} without a verdict ({why})")
    line = (f"judged {plural(outcome.judged, 'sample')} of run {args.name!r} with verifier {outcome.verifier!r} "
            f"({outcome.were_unjudged:,} were unjudged): {', '.join(verdicts)}")  # fmt: skip
    if args.all:
        line += f"; {plural(outcome.changed, 'verdict')} changed"
    line += f"; {outcome.left_unjudged:,} left unjudged"
    spent = outcome.spent
    if spent.tokens or spent.dollars:
        line += f"; judging cost {spent.tokens:,} tokens, ${spent.dollars:.4f}"
    console.print(line, highlight=False, markup=False, soft_wrap=True)
    for warning in warnings:
        console.print(f"warning: {warning}", style="yellow", highlight=False, markup=False, soft_wrap=True)
    after = f"`budgetlab report {run} --store {where}` shows the updated table"
    if state in (RunState.FAILED, RunState.INTERRUPTED):
        after += f"; `budgetlab run --name {run} --store {where}` draws the rest"
    console.print(after, highlight=False, markup=False, soft_wrap=True)
    return 0


def _point_at_store(exc: BudgetlabError, args: argparse.Namespace) -> None:
    """Points the ``budgetlab judge RUN ...`` that ``exc`` suggests (a budget that judges the rest,
    or judging again once the verifier is fixed) at the store this command was given: the library
    does not know how it was named, and without ``--store`` the command would open budgetlab.db."""
    command = f"budgetlab judge {shlex.quote(args.name)}"
    if len(exc.args) == 1 and isinstance(exc.args[0], str) and command in exc.args[0]:
        exc.args = (exc.args[0].replace(command, f"{command} --store {shlex.quote(args.store)}"),)
