#!/usr/bin/env python3
"""`conlab run` vs GNU parallel vs xargs -P, in one run.

    python3 bench/run.py           # installs GNU parallel with apt-get if it is missing

1000 jobs of `true` and of `echo {}` at 2 jobs at a time, median wall time of 5 runs each;
then peak memory with 100k and 1M inputs streamed from stdin (dry run: no spawns, so it
measures the input path alone), and with 20k real jobs.
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


if __name__ == "__main__":
    sys.exit(main())
