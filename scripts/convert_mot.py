"""Convert MoT-cascade recorded GPT-3.5 samples (BIG-Bench Date by default) to a budgetlab replay file.

Source: ``data/mot_cascade/GPT3_result__date_cot1_40.json.gz`` in the shared data folder (see its
README: 369 problems x 40 samples, from github.com/MurongYue/LLM_MoT_cascade, no license stated:
research use, do not redistribute). The data is read where it lies and never copied into the
repository.

The ``results`` field already holds each sample's extracted answer; it is kept as a string after
``strip()`` (an empty one becomes ``null``; free-text refusals stay as they are and simply match
nothing). A sample is correct when its answer equals the gold ``answer`` compared as strings
after strip, or numerically when both parse as numbers (the other MoT tasks are math). Output: one
replay samples record per sample, in recorded order, ``{"problem": "date-000", "config": CONFIG,
"answer", "correct", "text"}``, gzipped.

    python scripts/convert_mot.py                       # -> out/replay/mot_date_cot1_40.jsonl.gz
    python scripts/convert_mot.py --file GPT3_result__date_cot2.json.gz --out FILE
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data"
DEFAULT_FILE = "GPT3_result__date_cot1_40.json.gz"
DEFAULT_OUT = ROOT / "out" / "replay" / "mot_date_cot1_40.jsonl.gz"


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def matches(answer: str | None, gold: str) -> bool:
    if answer is None:
        return False
    if answer == gold:
        return True
    a, g = _number(answer), _number(gold)
    return a is not None and g is not None and a == g


def records(data: Path, file: str = DEFAULT_FILE) -> list[dict]:
    path = Path(data) / "mot_cascade" / file
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass --data with the shared data folder (the one holding mot_cascade/)")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        items = json.load(fh)
    stem = file.removeprefix("GPT3_result__").removeprefix("GPT4_result__").removesuffix(".json.gz")
    model = "gpt-4" if file.startswith("GPT4") else "gpt-3.5-turbo"
    task = stem.split("_")[0]
    out = []
    for i, item in enumerate(items):
        gold = str(item["answer"]).strip()
        texts = item.get("generated") or [None] * len(item["results"])
        for result, text in zip(item["results"], texts):
            answer = str(result).strip() if result is not None else ""
            answer = answer or None
            out.append({"problem": f"{task}-{i:03d}", "config": f"{model}/{stem}", "answer": answer,
                        "correct": matches(answer, gold), "text": text})  # fmt: skip
    return out


def write(recs: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    opener = gzip.open if out.suffix == ".gz" else open
    with opener(tmp, "wt", encoding="utf-8") as fh:
        for rec in recs:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    tmp.replace(out)


def convert(data: Path = DEFAULT_DATA, out: Path = DEFAULT_OUT, file: str = DEFAULT_FILE) -> dict:
    recs = records(data, file)
    write(recs, Path(out))
    return {
        "out": str(out),
        "problems": len({r["problem"] for r in recs}),
        "samples": len(recs),
        "unparsed": sum(r["answer"] is None for r in recs),
        "per_sample_accuracy": round(sum(r["correct"] for r in recs) / len(recs), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder (default: ../shared/data beside the repository)")
    parser.add_argument("--file", default=DEFAULT_FILE, help=f"file under mot_cascade/ (default: {DEFAULT_FILE})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="replay file to write (default: out/replay/mot_date_cot1_40.jsonl.gz, git-ignored)")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(convert(args.data, args.out, args.file)))
    except FileNotFoundError as err:
        print(f"convert_mot: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
