"""The user's question as tables: rows of bench/user_question.py, per seed and as medians and ranges.

    python bench/question_table.py ROWS.jsonl [MORE.jsonl ...] [--pool-plain EARLIER.jsonl ...]

Files are read in order and a later row replaces an earlier one of the same benchmark, arm, seed
and engine flags (a rerun after a fix replaces the run before it), so pass the oldest file first.
Rows that failed or ran other engine flags are left out of the margins; flagged engine rows get
their own arm. Prints, in points of test accuracy: every run, then per benchmark the median and
range over seeds of each arm and of the engine's margins over the two fixed designs, and over the
recommended design trained plainly on train+val where that arm ran.

``--pool-plain``: the plain arms of these files and of ROWS, every run kept (not the latest only), as
one median per benchmark, arm and seed; then each engine run of ROWS against those medians. One
plain run of a seed moved by up to 3 points between batches on this host (bench/RESULTS.md), so an
engine batch is also read against every plain run of its seeds, not only the one beside it.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ARMS = ("engine", "seed", "recommended")
ON_TRAIN_VAL = "recommended-tv"  # the recommended design plain on train+val, as the engine's final run trains


def latest(files: list[Path]) -> dict[tuple, dict]:
    """(benchmark, arm, seed) -> the last row with a test score; an engine row run with flags gets
    an arm of its own ("engine --final-on train+val")."""
    rows: dict[tuple, dict] = {}
    for path in files:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            if r.get("accuracy") is None:
                continue
            arm = r["arm"].split()[0] + (f" {r['flags']}" if r.get("flags") else "")
            rows[(r["data"], arm, r["seed"])] = r
    return rows


def _spread(values: list[float], fmt: str = "{:.1f}") -> str:
    one = fmt.format
    return f"{one(statistics.median(values))} ({one(min(values))} to {one(max(values))})" if len(values) > 1 \
        else one(values[0])


def tables(rows: dict[tuple, dict]) -> str:
    lines = ["| benchmark | seed | arm | test % | s of limit | detail |", "|---|---|---|---|---|---|"]
    for (data, arm, seed), r in sorted(rows.items()):
        detail = r.get("final design") or (f"{r['epochs trained']} ep" if "epochs trained" in r else "")
        lines.append(f"| {data} | {seed} | {arm} | {100 * r['accuracy']:.1f} | {r['seconds']:.0f} of "
                     f"{r['limit']:.0f} | {detail} |")
    lines += ["", "| benchmark | seeds | engine | seed 000 plain | recommended plain | engine minus better fixed | "
              "engine minus recommended | recommended plain on train+val | engine minus it |",
              "|---|---|---|---|---|---|---|---|---|"]
    for data in sorted({k[0] for k in rows}):
        seeds = sorted({k[2] for k in rows if k[0] == data})
        full = [s for s in seeds if all((data, a, s) in rows for a in ARMS)]
        acc = {a: [100 * rows[(data, a, s)]["accuracy"] for s in seeds if (data, a, s) in rows] for a in ARMS}
        better = [100 * (rows[(data, "engine", s)]["accuracy"]
                         - max(rows[(data, "seed", s)]["accuracy"], rows[(data, "recommended", s)]["accuracy"]))
                  for s in full]
        over_rec = [100 * (rows[(data, "engine", s)]["accuracy"] - rows[(data, "recommended", s)]["accuracy"])
                    for s in seeds if (data, "engine", s) in rows and (data, "recommended", s) in rows]
        over_tv = [100 * (rows[(data, "engine", s)]["accuracy"] - rows[(data, ON_TRAIN_VAL, s)]["accuracy"])
                   for s in seeds if (data, "engine", s) in rows and (data, ON_TRAIN_VAL, s) in rows]
        on_tv = [100 * rows[(data, ON_TRAIN_VAL, s)]["accuracy"] for s in seeds if (data, ON_TRAIN_VAL, s) in rows]
        cells = [_spread(acc[a]) if acc[a] else "" for a in ARMS]
        cells += [_spread(m, "{:+.1f}") if m else "" for m in (better, over_rec)]
        cells += [_spread(on_tv) if on_tv else "", _spread(over_tv, "{:+.1f}") if over_tv else ""]
        lines.append(f"| {data} | {len(full)} of {len(seeds)} | {' | '.join(cells)} |")
    return "\n".join(lines)


def plain_runs(files: list[Path]) -> dict[tuple, list[float]]:
    """(benchmark, arm, seed) -> the test accuracy of every plain run of that arm, in points."""
    runs: dict[tuple, list[float]] = {}
    for path in files:
        for line in path.read_text().splitlines():
            r = json.loads(line) if line.strip() else {}
            if r.get("accuracy") is not None and r["arm"].split()[0] in (*ARMS[1:], ON_TRAIN_VAL):
                runs.setdefault((r["data"], r["arm"].split()[0], r["seed"]), []).append(100 * r["accuracy"])
    return runs


def pooled_table(rows: dict[tuple, dict], runs: dict[tuple, list[float]]) -> str:
    """Each engine row of ``rows`` against the median of every plain run of its benchmark and seed, per
    plain arm, then per benchmark and arm the median and range of those margins."""
    lines = ["| benchmark | seed | engine | plain arm | its runs | their median | engine minus it |",
             "|---|---|---|---|---|---|---|"]
    margins: dict[tuple, list[float]] = {}
    for (data, arm, seed), r in sorted(rows.items()):
        if arm != "engine":
            continue
        for plain in (*ARMS[1:], ON_TRAIN_VAL):
            those = runs.get((data, plain, seed))
            if not those:
                continue
            mid = statistics.median(those)
            margins.setdefault((data, plain), []).append(100 * r["accuracy"] - mid)
            lines.append(f"| {data} | {seed} | {100 * r['accuracy']:.1f} | {plain} | {len(those)} | {mid:.1f} | "
                         f"{100 * r['accuracy'] - mid:+.1f} |")
    lines += ["", "| benchmark | plain arm | seeds | engine minus the plain runs' median |", "|---|---|---|---|"]
    lines += [f"| {data} | {plain} | {len(m)} | {_spread(m, '{:+.1f}')} |"
              for (data, plain), m in sorted(margins.items())]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rows", nargs="+", type=Path)
    p.add_argument("--pool-plain", nargs="+", type=Path, default=[], metavar="EARLIER",
                   help="also read each engine run against every plain run of these files and ROWS")
    args = p.parse_args()
    missing = [str(f) for f in (*args.rows, *args.pool_plain) if not f.is_file()]
    if missing:
        p.error(f"no such rows file: {', '.join(missing)}")
    rows = latest(args.rows)
    print(tables(rows))
    if args.pool_plain:
        print()
        print(pooled_table(rows, plain_runs([*args.pool_plain, *args.rows])))


if __name__ == "__main__":
    main()
