"""Medians of the bench reports in a folder, as a Markdown table."""
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
    ("server memory / subscriber (KB)", lambda r: r.get("server_kb_per_subscriber"), False),
    ("exact final tally", lambda r: r.get("exact"), None),
    ("errors", lambda r: r.get("errors"), None),
]


def main(folder: str) -> None:
    runs = defaultdict(list)
    for path in sorted(Path(folder).glob("*.json")):
        server, rest = path.stem.split("-", 1)
        scenario = rest.rsplit("-", 1)[0]
        try:
            runs[(scenario, server)].append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            runs[(scenario, server)].append({"exact": False, "errors": "failed"})
    print("| scenario | metric | votehub | seed | votehub better by |")
    print("|---|---|---|---|---|")
    for scenario in sorted({s for s, _ in runs}):
        for label, get, higher_better in METRICS:
            cells = {}
            for server in ("votehub", "seed"):
                values = [get(r) for r in runs.get((scenario, server), [])]
                values = [v for v in values if v is not None]
                if not values:
                    cells[server] = None
                elif all(isinstance(v, bool) for v in values):
                    cells[server] = "yes" if all(values) else "no"
                elif all(isinstance(v, (int, float)) for v in values):
                    cells[server] = statistics.median(values)
                else:
                    cells[server] = "failed"
            if cells["votehub"] is None and cells["seed"] is None:
                continue
            fmt = lambda v: "—" if v is None else (f"{v:,.2f}" if isinstance(v, float) else str(v))
            ratio = ""
            a, b = cells["votehub"], cells["seed"]
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
            if numbers and higher_better is not None and a and b:
                ratio = f"{(a / b if higher_better else b / a):,.1f}×"
            n = len(runs.get((scenario, "votehub"), [])) or len(runs.get((scenario, "seed"), []))
            print(f"| {scenario} (runs: {n}) | {label} | {fmt(a)} | {fmt(b)} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/bench")
