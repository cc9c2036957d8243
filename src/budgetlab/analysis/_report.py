"""What a run's budget bought: pass@k and maj@k per configuration, read from the store."""

from __future__ import annotations

import shlex
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from budgetlab.analysis._adaptive_estimators import (
    adaptive_maj_at_k,
    adaptive_pass_at_k,
)
from budgetlab.analysis._curves import bootstrap_ci, default_ks
from budgetlab.analysis._majority import maj_at_k
from budgetlab.analysis._passk import pass_at_k_many
from budgetlab.analysis._scaling import wilson_interval
from budgetlab.analysis._store_arg import StoreLike, reading
from budgetlab.analysis._timeouts import timed_out_spend
from budgetlab.core import JUDGED_BY, Sample, SampleState, with_distinct_names
from budgetlab.errors import InputError
from budgetlab.stores import BaseStore

__all__ = ["build_report", "scores_only_note"]


def _metric(values: list[float], n_boot: int, seed: int) -> dict[str, float]:
    value, lo, hi = bootstrap_ci(np.asarray(values), n_boot=n_boot, seed=seed)
    return {"value": value, "lo": lo, "hi": hi}


def build_report(store: StoreLike, run: str, *, n_boot: int = 1000, seed: int = 0, selector: Any = "majority") -> dict[str, Any]:
    """The report of ``run`` as a JSON-ready dict.

    ``store`` is an open store or its path (as :func:`budgetlab.run` takes it).

    For each configuration and each k in 1, 2, 4, ... up to the most samples any problem has,
    pass@k and maj@k average over the problems that have at least k judged samples (their
    number is given per k), with 95% bootstrap intervals over problems. Samples without a
    verdict (``correct`` unknown) and failed samples are left out; maj@k is reported only for
    configurations whose samples carry answers.

    ``model``, ``params`` and ``template`` (per configuration): the configuration itself, which
    its name may only abbreviate. ``empty``: done samples whose text is empty (the model stopped at once;
    often a stop string or chat setting that does not suit the prompt). ``accuracy``: the chance that one sample is right, averaged over problems
    (each problem counts once, however many samples it drew; under a stopping policy, from the
    samples drawn before any stop, as ``adaptive`` pass@1). ``selection``: the accuracy of the answer ``selector`` settles on for
    each problem (a selector, or its spec such as ``"majority"`` or ``"weighted:source=logprob"``),
    over the problems with a finished sample; ``samples_per_problem``: finished samples per
    problem. ``savings``: for a policy that stops each problem by itself (it has a
    ``max_samples``), the mean samples per problem against that maximum, i.e. against the fixed-k
    run that draws the maximum everywhere; ``None`` for other policies. When the budget stopped
    the run (``stopped_because`` starts with ``"budget:"``), problems the policy had not stopped
    yet count with the samples they had, so ``saved`` is not all the policy's saving. Under such a
    policy each configuration also gets ``adaptive``: pass@k and maj@k for k up to that maximum from
    :func:`~budgetlab.analysis.adaptive_pass_at_k` / :func:`~budgetlab.analysis.adaptive_maj_at_k`,
    which stay unbiased when a problem's samples stop early, with the problems they could not
    settle counted as ``undetermined`` and ``all_problems_bounds`` the mean over every problem
    with those counted as 0 and as 1 (the plain values above average only the problems that
    drew k samples, which under adaptive stopping are the harder ones).

    ``mixed_verdicts``: ``None``, or when some verdicts are not the run's verifier's (a
    ``budgetlab judge --all --verifier`` that stopped halfway) the samples with a verdict per
    verifier (``by``), ``run_verifier`` and a ``note`` naming the fix. ``scores_only``: ``None``,
    or when no sample has a verdict but some have a score (a callable verifier returning a
    number, without ``threshold``) their number, ``verifier`` and a ``note`` naming the fix.
    ``timed_out``: ``None``, or how much of the spend is an estimate for requests that timed out
    after they were sent (:func:`~budgetlab.analysis._timeouts.timed_out_spend`; samples drawn
    again since no longer carry theirs, which stays in ``spent`` and is counted as ``earlier``).
    """
    with reading(store, "build_report") as opened:
        return _build_report(opened, run, n_boot=n_boot, seed=seed, selector=selector)


def _build_report(store: BaseStore, run: str, *, n_boot: int, seed: int, selector: Any) -> dict[str, Any]:
    info = store.get_run(run)
    configs = with_distinct_names(store.configs(run))  # runs stored before names were kept apart
    by_config: dict[str, dict[str, list[Sample]]] = defaultdict(lambda: defaultdict(list))
    answered: dict[str, dict[str, list[Sample]]] = defaultdict(lambda: defaultdict(list))  # every done sample
    finished: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    failed: dict[str, int] = defaultdict(int)
    empty: dict[str, int] = defaultdict(int)  # done samples whose text is empty: nothing to judge
    verdicts_by: Counter[str] = Counter()  # the table's samples (with a verdict) per verifier
    scored_by: Counter[str] = Counter()  # samples with a score and no verdict, per verifier
    done = 0
    settled = store.samples(run, [SampleState.DONE, SampleState.FAILED])
    for s in settled:
        finished[s.config][s.problem] += 1
        if s.state is SampleState.FAILED:
            failed[s.config] += 1
            continue
        done += 1
        if s.text is not None and not s.text.strip():
            empty[s.config] += 1
        answered[s.config][s.problem].append(s)
        if s.correct is not None:
            by_config[s.config][s.problem].append(s)
            verdicts_by[str(s.details.get(JUDGED_BY, info.spec.verifier))] += 1
        elif s.score is not None:
            scored_by[str(s.details.get(JUDGED_BY, info.spec.verifier))] += 1
    chosen = _selector(selector)
    stopping = _stopping(info.spec.policy, dict(info.spec.policy_args))

    out_configs: dict[str, Any] = {}
    for config in configs:
        per_problem = list(by_config[config.id].values())
        entry: dict[str, Any] = {
            "id": config.id,
            # What sets it apart, for names that cannot say it all (two prompt templates: "m #1", "m #2").
            "model": config.model,
            "params": dict(config.params),
            "template": config.template,
            "samples": sum(len(v) for v in per_problem),
            "failed": failed.get(config.id, 0),
            "empty": empty.get(config.id, 0),
            "problems": len(per_problem),
            "pass_at_k": {},
            "maj_at_k": {},
            "ci": {"pass_at_k": {}, "maj_at_k": {}},
            "n_problems": {},
        }
        if per_problem:
            ns = np.array([len(v) for v in per_problem])
            cs = np.array([sum(bool(s.correct) for s in v) for v in per_problem])
            # Per problem first: a stopping policy draws more on hard problems, and pooling their
            # samples would weigh the hard ones more.
            entry["accuracy"] = float(np.mean(cs / ns))
            has_answers = any(s.answer is not None for v in per_problem for s in v)
            for k in default_ks(int(ns.max())):
                mask = ns >= k
                key = str(k)
                entry["n_problems"][key] = int(mask.sum())
                pk = _metric(list(pass_at_k_many(ns[mask], cs[mask], k)), n_boot, seed)
                entry["pass_at_k"][key] = pk["value"]
                entry["ci"]["pass_at_k"][key] = [pk["lo"], pk["hi"]]
                if has_answers:
                    values = [
                        maj_at_k([s.answer for s in v], [s.correct for s in v], k)
                        for v, keep in zip(per_problem, mask)
                        if keep
                    ]
                    mk = _metric(values, n_boot, seed)
                    entry["maj_at_k"][key] = mk["value"]
                    entry["ci"]["maj_at_k"][key] = [mk["lo"], mk["hi"]]
        counts = list(finished[config.id].values())
        entry["samples_per_problem"] = float(np.mean(counts)) if counts else None
        entry["selection"] = _selection(chosen, answered[config.id], n_boot, seed, info.spec.verifier)
        if stopping is not None and per_problem:
            entry["adaptive"] = _adaptive(per_problem, *stopping, n_boot, seed)
            first = entry["adaptive"]["pass_at_k"].get("1")
            if first is not None and not entry["adaptive"]["undetermined"]["pass_at_k"].get("1"):
                entry["accuracy"] = first  # the samples every problem drew before any stop decided
        out_configs[config.name] = entry

    return {
        "run": info.name,
        "state": info.state.value,
        "samples": done,
        "failed": sum(failed.values()),
        "problems": len(store.problems(run)),
        "configs": out_configs,
        "spent": info.spent.to_dict(),
        "timed_out": timed_out_spend(settled, info.spent),
        "budget": info.spec.budget.to_dict(),
        "stopped_because": info.stopped_because or "",
        "spec": info.spec.to_dict(),
        "savings": _savings(info.spec.policy, stopping, [n for c in finished.values() for n in c.values()],
                            cut_by_budget=(info.stopped_because or "").startswith("budget:")),
        "best_arm": _best_arm(store, run, info, configs),
        "mixed_verdicts": _mixed_verdicts(run, info.spec.verifier, verdicts_by),
        "scores_only": _scores_only(run, scored_by) if not verdicts_by else None,
    }


def _mixed_verdicts(run: str, verifier: str, verdicts_by: Counter[str]) -> dict[str, Any] | None:
    """Whose verdicts the table counts, when not all are the run's verifier's."""
    if set(verdicts_by) <= {verifier}:
        return None
    by = dict(sorted(verdicts_by.items(), key=lambda item: (item[0] != verifier, -item[1])))  # the run's first
    counts: list[str] = []
    for judge, n in by.items():
        unit = "" if counts else (" sample" if n == 1 else " samples")  # "120 samples by A, 80 by B"
        counts.append(f"{n:,}{unit} by {judge}" + (" (the run's)" if judge == verifier else ""))
    whose = f"verdicts of {len(by)} verifiers" if len(by) > 1 else "verdicts of another verifier than the run's"
    note = f"{whose}: {', '.join(counts)}; run `budgetlab judge {shlex.quote(run)} --all` to judge all with {verifier}"
    return {"by": by, "run_verifier": verifier, "note": note}


def _scores_only(run: str, scored_by: Counter[str]) -> dict[str, Any] | None:
    if not scored_by:
        return None
    verifier, _ = scored_by.most_common(1)[0]
    samples = sum(scored_by.values())
    return {"samples": samples, "verifier": verifier, "note": scores_only_note(run, verifier, samples)}


def scores_only_note(run: str, verifier: str, samples: int) -> str:
    """What to do when every sample ``verifier`` judged got a score but no verdict (correct):
    pass@k and maj@k count only samples with a verdict, so they are empty."""
    said = (f"verifier {verifier} gave scores but no verdicts for all {samples:,} samples, so pass@k and maj@k "
            "count none of them")  # fmt: skip
    again = f"budgetlab judge {shlex.quote(run)} --all"
    if verifier.partition(":")[0] == "callable":  # a bare number it returned is a score: threshold makes it a verdict
        return (f"{said}; add threshold=0.5 to count a score >= 0.5 as correct: {again} "
                f"--verifier {shlex.quote(verifier + ',threshold=0.5')}")  # fmt: skip
    return f"{said}; have it return correct (True or False) too, then: {again}"


def _selector(selector: Any) -> Any:
    from budgetlab.core.spec import parse_spec
    from budgetlab.selectors import make_selector

    if isinstance(selector, str):
        name, args = parse_spec(selector, "selector")
        return make_selector(name, args)
    if isinstance(selector, type) or not callable(getattr(selector, "select", None)) or not isinstance(
        getattr(selector, "name", None), str
    ):
        what = f"the class {selector.__name__}" if isinstance(selector, type) else f"{type(selector).__name__} {selector!r:.40}"
        raise InputError(
            f"selector must be a selector's spec (e.g. 'majority') or an instance with a name and a select(samples) "
            f"method, got {what}; e.g. selector=MajorityVote() (see docs/plugins.md)"
        )
    return selector


def _checked_pick(selector: Any, pick: Any) -> Any:
    """A selector's pick, or one error naming the selector: a tuple or a verdict of "yes" would
    otherwise be scored as a wrong answer without a word."""
    from budgetlab.selectors import Selection

    if not isinstance(pick, Selection) or pick.correct not in (True, False, None):
        shown = pick if not isinstance(pick, Selection) else f"correct={pick.correct!r}"
        raise InputError(
            f"selector {selector.name!r} returned {type(pick).__name__} ({shown!r:.60}); select must return "
            "budgetlab.selectors.Selection(answer, correct, confidence) with correct True, False or None"
        )
    return pick


def _selection(selector: Any, per_problem: dict[str, list[Sample]], n_boot: int, seed: int, verifier: str = "") -> dict[str, Any]:
    """The selector's answer per problem, scored by its verdict (unjudged or none: not correct).
    When no selected answer has a verdict there is no accuracy to give: ``accuracy`` is ``None``
    and ``unjudged_because`` says why (0% would read as "all wrong")."""
    out: dict[str, Any] = {"selector": selector.name, "problems": len(per_problem),
                           "judged": 0, "accuracy": None, "ci": None}  # fmt: skip
    if verifier.partition(":")[0] == "code" and selector.name in ("majority", "weighted"):
        # A code sample's answer is its test verdict ("passed", "failed: ..."): a vote over those
        # would select by the hidden tests' outcome, and split failures by their reason.
        out["unjudged_because"] = ("the code verifier's answers are test verdicts, not programs: a majority vote over "
                                   "them selects nothing (pass@k above is the measure; pick with --selector best_of_n and a scorer)")  # fmt: skip
        return out
    picks = [_checked_pick(selector, selector.select(samples)) for samples in per_problem.values()]
    judged = sum(p.correct is not None for p in picks)
    out["judged"] = judged
    weights = getattr(selector, "weights", None)  # a weighted vote with no weight to vote by is a plain majority
    if weights is not None and not any(w is not None for v in per_problem.values() for w in weights(v)):
        out["note"] = (f"no sample has a {selector.source} confidence, so {selector.name} is a plain majority vote here"
                       if selector.source != "auto" else f"no sample has a score, so {selector.name} is a plain majority "
                       f"vote here (--selector {selector.name}:source=logprob ranks by log-probability)")  # fmt: skip
    if picks and not judged:
        out["unjudged_because"] = _unjudged_because(selector, [s for v in per_problem.values() for s in v], picks)
    elif picks:
        # Right or wrong per problem: the Wilson interval, which a bootstrap of 0/1 values is not
        # (it gives "100.0-100.0" when every pick is right, or for one problem).
        accuracy = float(np.mean([p.correct is True for p in picks]))
        out["accuracy"], out["ci"] = accuracy, list(wilson_interval(accuracy, len(picks), 0.05))
    return out


def _unjudged_because(selector: Any, samples: list[Sample], picks: list[Any]) -> str:
    if all(s.correct is None for s in samples):
        return "no sample has a verdict (correct), so nothing was checked"
    source = getattr(selector, "source", None)
    if source is not None and all(p.answer is None and p.correct is None for p in picks):
        if source != "logprob" and any(s.logprob is not None for s in samples):
            fix = f"rank by log-probability with --selector {selector.name}:source=logprob"
        else:
            fix = "choose another selector, e.g. --selector majority"
        return f"no sample has a {'score or logprob' if source == 'auto' else source} for {selector.name} to rank by; {fix}"
    return f"no answer {selector.name} selected has a verdict"


def _policy(policy: str, args: dict[str, Any]) -> Any:
    """The run's policy, or None for one this version does not know (nothing to compare with)."""
    from budgetlab.errors import BudgetlabError
    from budgetlab.policies import make_policy

    try:
        return make_policy(policy, args)
    except BudgetlabError:
        return None


def _best_arm(store: BaseStore, run: str, info: Any, configs: list[Any]) -> dict[str, Any] | None:
    """For a best-arm policy (``--policy ucbe``, ``ucbe-lrf``, ``select-halving``, ...): the
    configuration it names best from the run's samples, whether the paired test already tells
    it apart from every other at its ``delta``, and each configuration's mean evaluation."""
    from budgetlab.core.view import RunView
    from budgetlab.evaluation import identified

    made = _policy(info.spec.policy, dict(info.spec.policy_args))
    if made is None or not callable(getattr(made, "observations", None)) or not hasattr(made, "algorithm"):
        return None
    view = RunView(store.problems(run), configs, store.samples(run), info.spec.budget)
    obs = made.observations(view)
    if obs.used == 0:
        return None
    arm = int(made.algorithm.recommend(obs))
    means = obs.arm_means()
    return {
        "algorithm": made.name,
        # What to run the same name again with for another sample per pair (select-halving, not halving).
        "more_passes": info.spec.policy + ":" + ",".join(
            f"{k}={v}" for k, v in {**info.spec.policy_args, "passes": int(obs.passes) + 1}.items()
        ),
        "best": configs[arm].name,
        "delta": made.delta,
        "identified": made.delta is not None and identified(obs, arm, made.delta),
        "evaluations": int(obs.used),
        # Every (problem, configuration) pair drew all its passes: more budget buys nothing here.
        "complete": bool(obs.used >= int(obs.capacity.sum())),
        # The policy had nothing more to draw (successive halving ends by its own plan).
        "policy_done": (info.stopped_because or "").startswith("complete:"),
        "passes": int(obs.passes),
        "means": {c.name: (None if np.isnan(m) else float(m)) for c, m in zip(configs, means)},
        "evaluations_per_config": {c.name: int(n) for c, n in zip(configs, obs.arm_counts)},
    }


def _stopping(policy: str, args: dict[str, Any]) -> tuple[int, int] | None:
    """(max_samples, min_samples) of a policy that stops each problem by itself, else None."""
    made = _policy(policy, args)
    if made is None:
        return None
    cap = getattr(made, "max_samples", None)
    if not isinstance(cap, int) or cap < 1:
        return None
    return cap, int(getattr(made, "min_samples", 0) or 0)


def _adaptive(per_problem: list[list[Sample]], cap: int, prefix: int, n_boot: int, seed: int) -> dict[str, Any]:
    ordered = [sorted(v, key=lambda s: s.index) for v in per_problem]
    has_answers = any(s.answer is not None for v in ordered for s in v)
    out: dict[str, Any] = {"prefix": prefix, "problems": len(per_problem), "pass_at_k": {}, "maj_at_k": {},
                           "ci": {"pass_at_k": {}, "maj_at_k": {}},
                           "undetermined": {"pass_at_k": {}, "maj_at_k": {}},
                           "all_problems_bounds": {"pass_at_k": {}, "maj_at_k": {}}}  # fmt: skip
    for k in default_ks(cap):
        estimates = {"pass_at_k": adaptive_pass_at_k([[bool(s.correct) for s in v] for v in ordered], k, prefix=prefix,
                                                     n_boot=n_boot, seed=seed)}  # fmt: skip
        if has_answers:
            estimates["maj_at_k"] = adaptive_maj_at_k(
                [([s.answer for s in v], [s.correct for s in v]) for v in ordered], k, prefix=prefix, n_boot=n_boot, seed=seed
            )
        for metric, est in estimates.items():
            known = est.n_problems > 0
            out[metric][str(k)] = est.value if known else None
            out["ci"][metric][str(k)] = [est.lo, est.hi] if known else None
            out["undetermined"][metric][str(k)] = est.undetermined
            out["all_problems_bounds"][metric][str(k)] = list(est.bounds())
    return out


def _savings(policy: str, stopping: tuple[int, int] | None, counts: list[int], *, cut_by_budget: bool) -> dict[str, Any] | None:
    """Samples drawn per (problem, configuration) against the policy's maximum; ``cut_by_budget``:
    the budget stopped the run, so part of the saving is the budget's, not the policy's."""
    if stopping is None or not counts:
        return None
    cap = stopping[0]
    mean = float(np.mean(counts))
    return {"policy": policy, "max_samples": cap, "mean_samples": mean, "saved": 1.0 - mean / cap,
            "drawn": int(sum(counts)), "fixed_k_samples": cap * len(counts), "cut_by_budget": cut_by_budget}  # fmt: skip
