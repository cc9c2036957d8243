"""Convert the ESC paper's recorded GPT-3.5 Last-Letters samples to a budgetlab replay file.

Source: ``data/esc/GPT3.5__last_letters__T0.7.jsonl.gz`` in the shared data folder (see its
README: 500 problems x 40 raw outputs, from github.com/Yiwei98/ESC, no license stated: research
use, do not redistribute). The data is read where it lies and never copied into the repository.

Each output's answer is the LAST match of ``answer is\\s*[:"']*\\s*([A-Za-z]+)``, lower-cased;
an output without a match has answer ``null`` (77 of 20000). A sample is correct when its answer
equals the gold answer (lower-cased). Output: one replay samples record per output, in recorded
order, ``{"problem": "ll-0000", "config": CONFIG, "answer", "correct", "text"}``, gzipped.

    python scripts/convert_esc.py                       # ../shared/data -> out/replay/esc_last_letters.jsonl.gz
    python scripts/convert_esc.py --data DIR --out FILE
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data"
DEFAULT_OUT = ROOT / "out" / "replay" / "esc_last_letters.jsonl.gz"
SOURCE = Path("esc") / "GPT3.5__last_letters__T0.7.jsonl.gz"
CONFIG = "gpt-3.5-turbo/last_letters/T0.7"
ANSWER = re.compile(r"answer is\s*[:\"']*\s*([A-Za-z]+)")


def extract(text: str) -> str | None:
    found = ANSWER.findall(text or "")
    return found[-1].lower() if found else None


def records(data: Path) -> list[dict]:
    """Replay records for every recorded output, problem by problem."""
    path = Path(data) / SOURCE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass --data with the shared data folder (the one holding esc/)")
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            item = json.loads(line)
            gold = str(item["answer"]).strip().lower()
            for text in item["generated_answer"]:
                answer = extract(text)
                out.append({"problem": f"ll-{i:04d}", "config": CONFIG, "answer": answer,
                            "correct": answer is not None and answer == gold, "text": text})  # fmt: skip
    return out


def write(recs: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    opener = gzip.open if out.suffix == ".gz" else open
    with opener(tmp, "wt", encoding="utf-8") as fh:
        for rec in recs:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    tmp.replace(out)


def convert(data: Path = DEFAULT_DATA, out: Path = DEFAULT_OUT) -> dict:
    recs = records(data)
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
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="replay file to write (default: out/replay/esc_last_letters.jsonl.gz, git-ignored)")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(convert(args.data, args.out)))
    except FileNotFoundError as err:
        print(f"convert_esc: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
