"""Medians of the bench reports in a folder, as a Markdown table.

    python3 bench/summarise.py FOLDER [SERVER ...]

Reports are named SERVER-SCENARIO-RUN.json. Columns follow the servers
given (default: every server found, votehub first); the last columns
compare the first with each of the others: how many times better the
first is, run by run (each run takes every server back to back, so a
noisy minute of the machine falls on all of them), the median of those.
"""
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

# (label, value, higher is better)
METRICS = [
    ("latency p50 (ms)", lambda r: r.get("latency_ms", {}).get("p50"), False),
    ("latency p99 (ms)", lambda r: r.get("latency_ms", {}).get("p99"), False),
    ("ballot answer p99 (ms)", lambda r: r.get("ack_ms", {}).get("p99"), False),
    ("server CPU / message (µs)", lambda r: r.get("server_cpu_us_per_message"), False),
    ("ballots/s", lambda r: r.get("ballots_per_s"), True),
    ("server CPU / ballot (µs)", lambda r: r.get("server_cpu_us_per_ballot"), False),
    ("server memory / subscriber (KB)", lambda r: r.get("server_kb_per_subscriber"), False),
    ("exact final tally", lambda r: r.get("exact"), None),
    ("errors", lambda r: r.get("errors"), None),
]


def cell(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    if all(isinstance(v, bool) for v in values):
        return "yes" if all(values) else "no"
    if all(isinstance(v, (int, float)) for v in values):
        return statistics.median(values)
    return "failed"


def fmt(v):
    return "—" if v is None else (f"{v:,.2f}" if isinstance(v, float) else str(v))


def main(folder, servers):
    runs = defaultdict(list)
    # (scenario, server) → {run number: report}, to pair runs.
    numbered = defaultdict(dict)
    for path in sorted(Path(folder).glob("*.json")):
        server, rest = path.stem.split("-", 1)
        scenario, number = rest.rsplit("-", 1)
        try:
            report = json.loads(path.read_text())
        except json.JSONDecodeError:
            report = {"exact": False, "errors": "failed"}
        runs[(scenario, server)].append(report)
        numbered[(scenario, server)][number] = report
    if not servers:
        found = sorted({s for _, s in runs})
        servers = sorted(found, key=lambda s: (s != "votehub", s))
    head = " | ".join(servers)
    others = servers[1:] or [None]
    compare = " | ".join(f"{servers[0]} vs {o}" if o else "" for o in others)
    print(f"| scenario | metric | {head} | {compare} |")
    print("|---|---|" + "---|" * (len(servers) + len(others)))
    for scenario in sorted({s for s, _ in runs}):
        n = max(len(runs.get((scenario, s), [])) for s in servers)
        for label, get, higher_better in METRICS:
            cells = [cell([get(r) for r in runs.get((scenario, s), [])]) for s in servers]
            if all(c is None for c in cells):
                continue
            ratios = []
            for other in servers[1:] or [None]:
                paired = []
                if other is not None and higher_better is not None:
                    mine = numbered.get((scenario, servers[0]), {})
                    theirs = numbered.get((scenario, other), {})
                    for number in sorted(mine.keys() & theirs.keys()):
                        a, b = get(mine[number]), get(theirs[number])
                        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
                        if numbers and a and b:
                            paired.append(a / b if higher_better else b / a)
                ratios.append(f"{statistics.median(paired):,.2f}×" if paired else "")
            row = " | ".join(fmt(c) for c in cells)
            print(f"| {scenario} (runs: {n}) | {label} | {row} | {' | '.join(ratios)} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/bench", sys.argv[2:])
