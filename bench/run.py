#!/usr/bin/env python3
"""`conlab run` vs GNU parallel vs xargs -P, in one run.

    python3 bench/run.py           # installs GNU parallel with apt-get if it is missing

1000 jobs of `true` and of `echo {}` at 2 jobs at a time, median wall time of 5 runs each;
then peak memory with 100k and 1M inputs streamed from stdin (dry run: no spawns, so it
measures the input path alone), and with 20k real jobs; then `--pipe` and `--pipe-part`
through `wc -l` over a file of PIPE_MB megabytes (default 1000; the line counts must agree).
"""

import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONLAB = os.path.join(ROOT, "target", "release", "conlab")


def ensure_parallel():
    if shutil.which("parallel"):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "parallel"], check=True, env=env, stdout=subprocess.DEVNULL)


def median_wall(shell_line, runs=5):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(["sh", "-c", shell_line], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_kib(shell_line):
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "sh", "-c", shell_line],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    return int(out.stderr.strip().splitlines()[-1])


def main():
    ensure_parallel()
    subprocess.run(["cargo", "build", "--quiet", "--release"], cwd=ROOT, check=True)
    cases = {
        "true": {
            "xargs -P2": "seq 1000 | xargs -P2 -n1 true",
            "GNU parallel -j2": "seq 1000 | parallel --will-cite -j2 true",
            "conlab run -j2": f"seq 1000 | {CONLAB} run -j2 true",
        },
        "echo {}": {
            "xargs -P2": "seq 1000 | xargs -P2 -I{} echo {}",
            "GNU parallel -j2": "seq 1000 | parallel --will-cite -j2 echo {}",
            "conlab run -j2": f"seq 1000 | {CONLAB} run -j2 echo {{}}",
        },
    }
    print(f"{'1000 jobs':<12} {'runner':<18} {'wall':>9} {'per job':>9} {'conlab is':>12}")
    for job, runners in cases.items():
        walls = {name: median_wall(line) for name, line in runners.items()}
        ours = walls["conlab run -j2"]
        for name, wall in walls.items():
            ratio = "" if name.startswith("conlab") else f"{wall / ours:.2f}x faster"
            print(f"{job:<12} {name:<18} {wall:>8.3f}s {wall:>8.2f}ms {ratio:>12}")
    print()
    print("peak RSS of conlab run, inputs streamed from stdin:")
    for n in (100_000, 1_000_000):
        kib = peak_rss_kib(f"seq {n} | {CONLAB} run -j2 --dry-run echo")
        print(f"  {n:>9,} inputs (dry run)   {kib / 1024:6.1f} MiB")
    for n in (2_000, 20_000):
        kib = peak_rss_kib(f"seq {n} | {CONLAB} run -j2 true")
        print(f"  {n:>9,} jobs of true       {kib / 1024:6.1f} MiB")
    pipe_bench(int(os.environ.get("PIPE_MB", "1000")))


def pipe_bench(megabytes):
    """--pipe and --pipe-part through `wc -l`, conlab and GNU parallel side by side."""
    path = f"/tmp/conlab-bench-pipe-{megabytes}M"
    if not os.path.exists(path) or os.path.getsize(path) != megabytes * 1_000_000:
        subprocess.run(f"seq 1 {megabytes * 140000} | head -c {megabytes * 1_000_000} > {path}",
                       shell=True, check=True)
    subprocess.run(["cat", path], check=True, stdout=subprocess.DEVNULL)  # into the page cache
    cases = [
        ("wc -l alone", f"wc -l < {path}"),
        ("conlab --pipe-part", f"{CONLAB} run --pipe-part -a {path} wc -l"),
        ("GNU --pipe-part", f"parallel --will-cite --pipe-part -a {path} wc -l"),
        ("conlab --pipe", f"{CONLAB} run --pipe wc -l < {path}"),
        ("GNU --pipe", f"parallel --will-cite --pipe wc -l < {path}"),
    ]
    print()
    print(f"{megabytes} MB through wc -l (median of 3)")
    walls = {}
    for name, line in cases:
        counts = subprocess.run(["sh", "-c", line], check=True, capture_output=True, text=True)
        total = sum(int(x) for x in counts.stdout.split())
        walls[name] = median_wall(line, runs=3)
        print(f"  {name:<20} {walls[name]:7.2f} s  {megabytes / walls[name]:7.0f} MB/s  {total} lines")
    for kind in ("--pipe-part", "--pipe"):
        print(f"  conlab {kind} vs GNU: {walls['GNU ' + kind] / walls['conlab ' + kind]:.2f}x faster")


if __name__ == "__main__":
    sys.exit(main())
