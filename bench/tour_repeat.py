#!/usr/bin/env python3
"""Runs `conlab tour` N times in a row and counts each claim's verdicts: a claim that is true
on this machine must hold in every run, and one that is not must fail the same way every
time. Not run in CI (it takes N x ~10 s and wants a quiet machine).

    python3 bench/tour_repeat.py 20                 # the table in docs/benchmarks.md
    python3 bench/tour_repeat.py 5 --only web --peers

Extra arguments go to `conlab tour`. Prints a Markdown table: per experiment, how many runs
held, did not hold, or could not be shown, the other programs' largest share of the CPU
during it, and the spread of the figure its verdict rests on; then the tour's wall times.
"""

import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONLAB = os.path.join(ROOT, "target", "release", "conlab")

# The figure each verdict mostly rests on, per experiment (None: a correctness claim).
KEY = {
    "stations": "row_latency_units",
    "kettle": "concurrent_s",
    "primes": "processes_speedup",
    "gil-io": "gil_threads_speedup",
    "atomic": "racy_lost",
    "web": None,
}


def key_figure(finding):
    figures = {f["name"]: f["value"] for f in finding["figures"]}
    if finding["name"] == "costs":
        return ("process/thread spawn", figures["process_spawn_ns"] / figures["thread_spawn_ns"])
    if finding["name"] == "web":
        ratio = figures.get("event_over_prefork_per_cpu_s")
        return ("event/prefork per CPU-s", ratio) if ratio else None
    name = KEY.get(finding["name"])
    return (name, figures[name]) if name in figures else None


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 20
    extra = sys.argv[2:] if len(sys.argv) > 1 and sys.argv[1].isdigit() else sys.argv[1:]
    if not os.path.exists(CONLAB):
        subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    counts, others, keys, walls = {}, {}, {}, []
    order = []
    for i in range(runs):
        started = time.monotonic()
        out = subprocess.run([CONLAB, "tour", "--json", "-", *extra], capture_output=True, text=True)
        walls.append(time.monotonic() - started)
        if out.returncode != 0:
            print(f"run {i + 1}: conlab tour exited {out.returncode}: {out.stderr.strip()}", file=sys.stderr)
            continue
        report = json.loads(out.stdout)
        for f in report["findings"]:
            name = f["name"]
            if name not in counts:
                order.append(name)
                counts[name] = {"held": 0, "not-held": 0, "cannot-show": 0}
                others[name], keys[name] = 0.0, []
            counts[name][f["verdict"]["outcome"]] += 1
            if f.get("machine"):
                others[name] = max(others[name], f["machine"]["others_percent"])
            k = key_figure(f)
            if k:
                keys[name].append(k)
        print(f"run {i + 1}/{runs}: {report['held']} held, {report['not_held']} not, "
              f"{report['cannot_show']} cannot show, {walls[-1]:.1f} s", file=sys.stderr)
    print(f"| experiment | held | did not hold | cannot show | others' CPU, max | key figure: min - max |")
    print("|---|---:|---:|---:|---:|---|")
    for name in order:
        c = counts[name]
        if keys[name]:
            label = keys[name][0][0]
            values = [v for _, v in keys[name]]
            spread = f"{label}: {min(values):.3g} - {max(values):.3g}"
        else:
            spread = "(correctness)"
        print(f"| {name} | {c['held']} | {c['not-held']} | {c['cannot-show']} | {others[name]:.0f}% | {spread} |")
    walls.sort()
    print(f"\ntour wall time over {len(walls)} runs: median {walls[len(walls) // 2]:.1f} s, "
          f"max {walls[-1]:.1f} s")


if __name__ == "__main__":
    main()
