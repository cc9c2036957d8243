"""``budgetlab estimate``: systems' mean human scores from a few rated items plus cheap scores on
every item, as a user runs it after ``budgetlab subset``; its one-line errors; and the inputs a
user-acceptance test broke it with (a human score not named like one, non-finite scores, a set
where every item is rated, flags out of range)."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from budgetlab.cli._main import main

SYSTEMS = ("weak", "middling", "strong", "best")


def write_set(path: Path, *, rated: int, metric: bool = True, items: int = 160, seed: int = 0) -> Path:
    """Systems of rising quality; a human score on the first ``rated`` items only; a metric that
    tracks the human score (r about 0.8) on every item."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(items):
        difficulty = rng.normal()
        scores = {}
        for quality, system in enumerate(SYSTEMS):
            human = quality * 0.3 - difficulty + rng.normal(0, 0.6)
            scores[system] = {"bleu": human + rng.normal(0, 0.5)} if metric else {}
            if i < rated:
                scores[system]["human_overall"] = human
        lines.append(json.dumps({"i": f"item{i}", "src": "s", "tgt": {s: "an output" for s in SYSTEMS}, "scores": scores}))
    path.write_text("\n".join(lines) + "\n")
    return path


def run(*argv: str) -> tuple[int, str]:
    console = Console(file=io.StringIO(), width=200)
    code = main(["estimate", *argv], console=console)
    return code, console.file.getvalue()  # type: ignore[attr-defined]


def test_estimate_is_narrower_than_plain_averaging_where_the_metric_tracks_the_human_score(tmp_path: Path, capsys) -> None:
    path = write_set(tmp_path / "set.jsonl", rated=40)
    code, _ = run(str(path), "--json", "--cost-ratio", "100")
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["method"].startswith("control variates")
    rows = {row["system"]: row for row in report["systems"]}
    assert [row["system"] for row in report["systems"]] == list(reversed(SYSTEMS))  # best first
    for row in rows.values():
        assert row["rated"] == 40 and row["low"] < row["mean"] < row["high"]
        assert row["high"] - row["low"] < row["plain_high"] - row["plain_low"]
    assert report["held_out_correlation"] > 0.6
    assert report["plain_labels_for_same_width"] > 40
    assert report["split"]["costly"] < 40 <= report["split"]["cheap"]
    code, text = run(str(path))
    assert code == 0 and "plain averaging would need about" in text and "95% interval" in text


def test_the_intervals_cover_the_means_over_all_items(tmp_path: Path, capsys) -> None:
    """The mean over all 160 items (known here because the generator knows it) lies inside."""
    covered = 0
    for seed in range(20):
        full = write_set(tmp_path / f"full{seed}.jsonl", rated=160, seed=seed)
        truth = {}
        for line in full.read_text().splitlines():
            for system, values in json.loads(line)["scores"].items():
                truth.setdefault(system, []).append(values["human_overall"])
        path = write_set(tmp_path / f"part{seed}.jsonl", rated=40, seed=seed)
        assert run(str(path), "--json")[0] == 0
        for row in json.loads(capsys.readouterr().out)["systems"]:
            covered += row["low"] <= np.mean(truth[row["system"]]) <= row["high"]
    assert covered >= 0.85 * 20 * len(SYSTEMS)


def test_a_set_without_a_metric_falls_back_to_plain_averaging(tmp_path: Path, capsys) -> None:
    path = write_set(tmp_path / "set.jsonl", rated=30, metric=False)
    assert run(str(path), "--json")[0] == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"].startswith("plain averaging")
    assert all(row["mean"] == row["plain_mean"] for row in report["systems"])


@pytest.mark.parametrize(
    "rated,extra,message",
    [
        (0, (), "has no human score on any item; rate some items first (budgetlab subset"),
        (2, (), "system 'weak' has 2 human-rated items"),
        (40, ("--confidence", "1.5"), "--confidence must lie in (0, 1), got 1.5"),
        (40, ("--cost-ratio", "-1"), "--cost-ratio must be a positive number, got -1.0"),
        (40, ("--scale", "5,1"), "--scale must be LOW,HIGH with LOW < HIGH, got '5,1'"),
        (40, ("--scale", "1-5"), "--scale must be LOW,HIGH with LOW < HIGH, got '1-5'"),
        (40, ("--scale", "0,1"), "--scale 0,1: the human scores run from -3.25825 to 3.11622, outside it; give the scale they are on, e.g. --scale -4,4"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, capsys, rated: int, extra: tuple, message: str) -> None:
    path = write_set(tmp_path / "set.jsonl", rated=rated)
    code, _ = run(str(path), *extra)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_pass_fail_scores_that_all_pass_need_their_scale(tmp_path: Path, capsys) -> None:
    """Every rated item passed for every system: refused with the fix named; with --scale 0,1 the
    intervals keep room for a failure among the unrated items."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(100):
        scores = {}
        for system in SYSTEMS:
            passed = float(rng.random() < 0.97)
            scores[system] = {"judge": passed + rng.normal(0, 0.2)}
            if i < 12:
                scores[system]["human_overall"] = 1.0
        lines.append(json.dumps({"i": i, "scores": scores}))
    path = tmp_path / "passes.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, _ = run(str(path))
    err = capsys.readouterr().err
    assert code == 2 and "do not vary within any system" in err and "--scale 0,1" in err
    assert run(str(path), "--scale", "0,1", "--json")[0] == 0
    for row in json.loads(capsys.readouterr().out)["systems"]:
        assert row["low"] < 0.99 and row["high"] >= 1.0


# ---- inputs a user-acceptance test broke it with ----------------------------------------------
def write_scaled_set(path: Path, *, rated: int, human: str = "human_overall", items: int = 60, seed: int = 0) -> Path:
    """Systems of rising quality on a 1-5 scale; the human score under ``human`` on the first
    ``rated`` items; a metric (bleu) tracking it on every item."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(items):
        difficulty = rng.normal(0, 0.5)
        scores = {}
        for quality, system in enumerate(SYSTEMS):
            value = float(np.clip(2 + 0.6 * quality - difficulty + rng.normal(0, 0.6), 1, 5))
            scores[system] = {"bleu": value + rng.normal(0, 0.5)}
            if i < rated:
                scores[system][human] = value
        lines.append(json.dumps({"i": f"item{i}", "scores": scores}))
    path.write_text("\n".join(lines) + "\n")
    return path


def one_line_error(capsys, code: int, *fragments: str) -> None:
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("budgetlab: error: "), err
    for fragment in fragments:
        assert fragment in err, err


def test_the_key_named_by_human_is_never_a_cheap_control(tmp_path: Path, capsys) -> None:
    """``--human rating``: the rating is the costly score, not also a control that fits itself
    (which gave r = 1.00 and zero-width intervals)."""
    path = write_scaled_set(tmp_path / "set.jsonl", rated=20, human="rating")
    code, _ = run(str(path), "--human", "rating", "--json")
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["held_out_correlation"] < 0.99
    for row in report["systems"]:
        assert row["rated"] == 20 and row["high"] - row["low"] > 0.05
    renamed = write_scaled_set(tmp_path / "named.jsonl", rated=20)  # the same set, under the recognised name
    assert run(str(renamed), "--json")[0] == 0
    assert json.loads(capsys.readouterr().out)["systems"] == report["systems"]


def test_no_human_score_says_which_keys_count_and_mentions_human(tmp_path: Path, capsys) -> None:
    path = write_scaled_set(tmp_path / "set.jsonl", rated=20, human="rating")
    one_line_error(capsys, run(str(path))[0], "no human score on any item", "starts with 'human'", "--human KEY",
                   "the set has: bleu, rating")  # fmt: skip


@pytest.mark.parametrize("key,value", [("human_overall", "Infinity"), ("human_overall", "NaN"), ("bleu", "Infinity")])
def test_non_finite_scores_are_refused_naming_file_line_system_and_key(
    tmp_path: Path, capsys, key: str, value: str
) -> None:
    path = write_scaled_set(tmp_path / "set.jsonl", rated=20)
    lines = path.read_text().splitlines()
    row = json.loads(lines[2])
    row["scores"]["strong"][key] = float(value.replace("Infinity", "inf"))
    lines[2] = json.dumps(row)  # json writes Infinity / NaN, as a user's tool might
    path.write_text("\n".join(lines) + "\n")
    one_line_error(capsys, run(str(path), "--json")[0], f"{path}:3: score {key!r} of system 'strong' is not finite")


def test_every_item_rated_gets_a_notice_not_a_claim_about_unseen_items(tmp_path: Path, capsys) -> None:
    path = write_scaled_set(tmp_path / "set.jsonl", rated=25, items=25)
    code, text = run(str(path), "--cost-ratio", "100")
    flat = " ".join(text.split())
    assert code == 0 and "every item is rated: these are the exact means of these 25 items" in flat
    assert "unseen" not in flat and "plain averaging would need" not in flat
    assert run(str(path), "--json")[0] == 0
    assert "every item is rated" in json.loads(capsys.readouterr().out)["notice"]
    partly = write_scaled_set(tmp_path / "part.jsonl", rated=25, items=60)
    code, text = run(str(partly))
    flat = " ".join(text.split())
    assert code == 0 and "every item is rated" not in flat and "on rated items held out of the fit: r =" in flat


@pytest.mark.parametrize(
    "extra,message",
    [
        (("--cost-ratio", "inf"), "--cost-ratio must be finite, got inf; e.g. --cost-ratio 100"),
        (("--scale=-inf,inf",), "--scale must be finite"),
        (("--scale=2,4",), "--scale 2,4: the human scores run from"),
    ],
)
def test_bad_flags_are_one_line_in_the_flags_words(tmp_path: Path, capsys, extra: tuple, message: str) -> None:
    path = write_scaled_set(tmp_path / "set.jsonl", rated=20)
    one_line_error(capsys, run(str(path), *extra)[0], message)


def test_scale_error_gives_the_scale_the_scores_are_on(tmp_path: Path, capsys) -> None:
    path = write_scaled_set(tmp_path / "set.jsonl", rated=20)
    one_line_error(capsys, run(str(path), "--scale=2,4")[0], "e.g. --scale 1,5")


def test_a_metric_missing_on_a_rated_item_is_named(tmp_path: Path, capsys) -> None:
    path = write_scaled_set(tmp_path / "set.jsonl", rated=20)
    lines = path.read_text().splitlines()
    row = json.loads(lines[4])
    del row["scores"]["weak"]["bleu"]
    lines[4] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    one_line_error(capsys, run(str(path))[0], "system 'weak' has a human score on item 'item4'", "but no 'bleu' there")


def test_reads_a_gz_suffix_in_capitals(tmp_path: Path, capsys) -> None:
    import gzip

    plain = write_scaled_set(tmp_path / "set.jsonl", rated=20)
    packed = tmp_path / "set.jsonl.GZ"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert run(str(packed), "--json")[0] == 0
    assert len(json.loads(capsys.readouterr().out)["systems"]) == len(SYSTEMS)


def test_no_runtime_warning_reaches_stderr(tmp_path: Path, capsys) -> None:
    """An item no system has a metric on (an item mean of nothing) once leaked numpy's warning."""
    path = write_scaled_set(tmp_path / "set.jsonl", rated=20)
    with path.open("a") as fh:
        fh.write(json.dumps({"i": "bare", "scores": {s: {} for s in SYSTEMS}}) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pytest would otherwise collect the warning, not let it print
        code, _ = run(str(path), "--json")
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    json.loads(captured.out)


def _keep_ratings_on(path: Path, ids: set[str]) -> Path:
    """The set with human scores left only on the items ``ids``, as after raters scored them."""
    lines = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row["i"] not in ids:
            row["scores"] = {s: {k: v for k, v in values.items() if k != "human_overall"} for s, values in row["scores"].items()}
        lines.append(json.dumps(row))
    out = path.with_name("rated_" + path.name)
    out.write_text("\n".join(lines) + "\n")
    return out


def test_items_chosen_by_an_informative_method_get_a_note_that_the_intervals_are_indicative(tmp_path: Path, capsys) -> None:
    full = write_set(tmp_path / "set.jsonl", rated=160)
    assert main(["subset", str(full), "--method", "variance", "--size", "40", "--json"]) == 0
    chosen = set(json.loads(capsys.readouterr().out)["chosen"])
    code, text = run(str(_keep_ratings_on(full, chosen)))
    text = " ".join(text.split())  # the note wraps
    assert code == 0 and "not like a random sample" in text and "subset --method random" in text
    run(str(_keep_ratings_on(full, chosen)), "--json")
    check = json.loads(capsys.readouterr().out)["rated_sample"]
    assert check["unlike_random"] and check["statistic"] == "spread" and check["p_value"] < 0.005


def test_randomly_chosen_rated_items_get_no_such_note(tmp_path: Path, capsys) -> None:
    flagged = 0
    for seed in range(10):
        path = write_set(tmp_path / f"set{seed}.jsonl", rated=40, seed=seed)
        code, text = run(str(path))
        assert code == 0
        flagged += "not like a random sample" in text
    assert flagged <= 1


def test_items_chosen_for_a_middling_metric_get_the_note(tmp_path: Path, capsys) -> None:
    """IRT's most informative items are neither easy nor hard: their mean metric level is the
    set's, and their spread may be too, so neither statistic saw them (story_gen_roc: none of
    100 IRT subsets flagged)."""
    full = write_set(tmp_path / "set.jsonl", rated=160)
    level = {}
    for line in full.read_text().splitlines():
        row = json.loads(line)
        level[row["i"]] = np.mean([v["bleu"] for v in row["scores"].values()])
    centre = np.median(list(level.values()))
    chosen = set(sorted(level, key=lambda i: abs(level[i] - centre))[:40])
    code, text = run(str(_keep_ratings_on(full, chosen)))
    text = " ".join(text.split())
    assert code == 0 and "not like a random sample" in text and "distance from the set's median level averages" in text
    run(str(_keep_ratings_on(full, chosen)), "--json")
    check = json.loads(capsys.readouterr().out)["rated_sample"]
    assert check["unlike_random"] and check["statistic"] == "middling"


def test_items_without_the_metric_are_left_out_of_the_random_draws() -> None:
    """Random draws counted items without the metric, so they averaged fewer items than were rated
    and spread wider: a choice as unlike random was missed."""
    from budgetlab.evaluation import check_rated_sample

    rng = np.random.default_rng(3)
    metric = rng.normal(size=(400, 3))
    metric[200:] = np.nan  # half the set has no metric (systems vary item by item)
    rated = np.zeros(400, bool)
    rated[np.argsort(-metric[:200].mean(axis=1))[:60]] = True  # the 60 highest levels of 200
    check = check_rated_sample(metric, rated)
    assert check is not None and check.random_high - check.random_low < 0.5
