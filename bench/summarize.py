#!/usr/bin/env python3
"""Summarises the JSON reports of roundtable-load runs in a folder as Markdown.

Usage: python3 bench/summarize.py RESULTS_DIR

One row per server and workload: the median over its runs of each figure, with the
number of runs. Then, per server, the highest edit rate at which every run delivered
every edit with p99 under 50 ms ("sustained"), and Roundtable's ratio to each peer.
"""

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

P99_LIMIT_MS = 50.0


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=1):
    return "–" if value is None else f"{value:.{digits}f}"


def main(folder):
    groups = defaultdict(list)
    for path in sorted(Path(folder).glob("*.json")):
        report = json.loads(path.read_text())
        # The label starts with the server as bench/peers.sh names it, which tells
        # variants of one protocol apart (y-websocket with and without LevelDB).
        server = (report.get("label") or report["target"]).split()[0]
        key = (server, report["rooms"], report["clients_per_room"], report["rate_per_client"])
        groups[key].append(report)
    if not groups:
        print(f"no reports in {folder}")
        return 1

    print("| server | rooms × clients | edits/s per client | runs | delivered edits/s | "
          "p50 ms | p95 ms | p99 ms | max ms | undelivered | server CPU % | server peak RSS MiB | "
          "generator CPU % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    sustained = defaultdict(float)
    for (target, rooms, clients, rate), runs in sorted(groups.items()):
        latency = [r["latency"] or {} for r in runs]
        server = [r.get("server") or {} for r in runs]
        p99 = median([l.get("p99_ms") for l in latency])
        undelivered = sum(r["edits_undelivered"] for r in runs)
        delivered = median([r["edits_delivered_per_second"] for r in runs])
        peak = median([s.get("peak_rss_kib") for s in server])
        print(f"| {target} | {rooms} × {clients} | {rate:g} | {len(runs)} | {fmt(delivered, 0)} | "
              f"{fmt(median([l.get('p50_ms') for l in latency]), 2)} | "
              f"{fmt(median([l.get('p95_ms') for l in latency]), 2)} | {fmt(p99, 2)} | "
              f"{fmt(median([l.get('max_ms') for l in latency]), 1)} | {undelivered} | "
              f"{fmt(median([s.get('cpu_percent_of_one_core') for s in server]), 0)} | "
              f"{fmt(peak / 1024 if peak else None, 0)} | "
              f"{fmt(median([r['generator']['cpu_percent_of_one_core'] for r in runs]), 0)} |")
        every_run_ok = all(
            r["edits_undelivered"] == 0 and r["latency"] and r["latency"]["p99_ms"] < P99_LIMIT_MS
            for r in runs
        )
        if every_run_ok:
            key = (target, rooms, clients)
            sustained[key] = max(sustained[key], delivered)

    print()
    print(f"Sustained: the most delivered edits/s at which every run delivered every edit "
          f"with p99 under {P99_LIMIT_MS:g} ms (among the rates tried).")
    print()
    print("| server | rooms × clients | sustained edits/s | Roundtable's ratio |")
    print("|---|---|---|---|")
    shapes = sorted({(rooms, clients) for (_, rooms, clients, _) in groups})
    targets = sorted({target for (target, _, _, _) in groups})
    for rooms, clients in shapes:
        ours = sustained.get(("roundtable", rooms, clients))
        for target in targets:
            theirs = sustained.get((target, rooms, clients))
            ratio = f"{ours / theirs:.2f}×" if ours and theirs and target != "roundtable" else ""
            print(f"| {target} | {rooms} × {clients} | {fmt(theirs, 0)} | {ratio} |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
