#!/usr/bin/env python3
"""The lecture's prime sums in Python and in conlab, same algorithm, same machine, one run.

    python3 bench/primes.py

1. serial: the lecture's find_rand/is_prime (trial division, 6k+-1) for N = 600000,
   CPython vs `conlab bench primes:600000 --models serial`.
2. the lecture's list [400000, 500000, 600000] x 4 on 2 workers: Python's threads (GIL) and
   processes vs conlab's threads --gil, threads and processes.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INPUTS = [400000, 500000, 600000] * 4


def is_prime(num):
    if num <= 1:
        return False
    elif num <= 3:
        return True
    elif num % 2 == 0 or num % 3 == 0:
        return False
    i = 5
    while i * i <= num:
        if num % i == 0 or num % (i + 2) == 0:
            return False
        i += 6
    return True


def find_rand(num):
    sum_of_primes = 0
    ix = 2
    while ix <= num:
        if is_prime(ix):
            sum_of_primes += ix
        ix += 1
    return sum_of_primes


def median_s(fn, runs=3):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def conlab(*args):
    subprocess.run(["cargo", "build", "--quiet", "--release"], cwd=ROOT, check=True)
    out = subprocess.run(
        [os.path.join(ROOT, "target", "release", "conlab"), "bench", *args, "--json", "-"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def main():
    assert find_rand(600000) == 14071826345
    py_serial = median_s(lambda: find_rand(600000))
    rs = conlab("primes:600000", "--models", "serial", "--tasks", "1", "--runs", "5")
    rs_serial = rs["results"][0]["wall_s"]
    print(f"{'serial sum of primes <= 600000':<44} {'Python 3.11':>12} {'conlab':>12} {'ratio':>8}")
    print(f"{'  wall time':<44} {py_serial * 1e3:>10.1f}ms {rs_serial * 1e3:>10.1f}ms {py_serial / rs_serial:>7.1f}x")

    with ThreadPoolExecutor(2) as pool:
        py_threads = median_s(lambda: list(pool.map(find_rand, INPUTS)), runs=1)
    with ProcessPoolExecutor(2) as pool:
        pool.submit(find_rand, 10).result()
        py_procs = median_s(lambda: list(pool.map(find_rand, INPUTS)), runs=1)
    py_one = median_s(lambda: [find_rand(n) for n in INPUTS], runs=1)
    rs = conlab("primes:500000", "--tasks", "12", "--runs", "3", "--gil", "--models", "threads,processes")
    rows = {(r["model"], r["gil"]): r for r in rs["results"]}
    print()
    print(f"{'12 prime sums, 2 workers: speedup vs serial':<44} {'Python 3.11':>12} {'conlab':>12}")
    print(f"{'  threads under the GIL':<44} {py_one / py_threads:>11.2f}x {rows[('threads', True)]['speedup']:>11.2f}x")
    print(f"{'  threads (no GIL in Rust)':<44} {'-':>12} {rows[('threads', False)]['speedup']:>11.2f}x")
    print(f"{'  processes':<44} {py_one / py_procs:>11.2f}x {rows[('processes', False)]['speedup']:>11.2f}x")
    print(f"{'  processes: parallel efficiency':<44} {py_one / py_procs / 2 * 100:>11.0f}% {rows[('processes', False)]['efficiency'] * 100:>11.0f}%")
    print(f"{'  serial wall (Python: lecture list x4; conlab: 12 x primes:500000)':<44} {py_one * 1e3:>10.0f}ms {rows[('serial', False)]['wall_s'] * 1e3:>10.0f}ms")


if __name__ == "__main__":
    sys.exit(main())
