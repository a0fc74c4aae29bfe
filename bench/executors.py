#!/usr/bin/env python3
"""Python's executors vs conlab's, on the same no-op tasks, in one run.

    python3 bench/executors.py            # builds conlab's example, installs uvloop if it can
    python3 bench/executors.py --quick    # smaller counts (a smoke run)

Python side: concurrent.futures (ThreadPoolExecutor, ProcessPoolExecutor),
multiprocessing.Pool.map with a chunksize, asyncio (and uvloop when importable).
conlab side: `cargo run --release -p conlab-exec --example throughput`, which prints JSON.
Every figure is the median of several runs; ratios are conlab / Python from this run only.
"""

import asyncio
import concurrent.futures as cf
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time

WORKERS = 2
QUICK = "--quick" in sys.argv


def noop(x):
    return x


def median_rate(runs, items, fn):
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        rates.append(items / (time.perf_counter() - start))
    return statistics.median(rates)


def threads_submit_wait(pool, n):
    futures = [pool.submit(noop, i) for i in range(n)]
    for f in futures:
        f.result()


def threads_round_trips(pool, n):
    for i in range(n):
        pool.submit(noop, i).result()


async def spawn_join(n):
    tasks = [asyncio.ensure_future(anoop(i)) for i in range(n)]
    for t in tasks:
        await t


async def anoop(i):
    return i


def python_side():
    scale = 0.1 if QUICK else 1
    out = {}
    n = int(100_000 * scale)
    with cf.ThreadPoolExecutor(WORKERS) as pool:
        out["threads_submit_wait_per_s"] = median_rate(5, n, lambda: threads_submit_wait(pool, n))
        m = int(20_000 * scale)
        out["threads_round_trips_per_s"] = median_rate(5, m, lambda: threads_round_trips(pool, m))
    n = int(20_000 * scale)
    with cf.ProcessPoolExecutor(WORKERS) as pool:
        pool.submit(noop, 0).result()  # start the workers outside the timing
        out["processes_submit_wait_per_s"] = median_rate(3, n, lambda: threads_submit_wait(pool, n))
    items = int(2_000_000 * scale)
    with multiprocessing.Pool(WORKERS) as pool:
        out["processes_map_items_per_s"] = median_rate(
            3, items, lambda: pool.map(noop, range(items), chunksize=65_536)
        )
    n = int(100_000 * scale)
    out["async_spawn_join_per_s"] = median_rate(5, n, lambda: asyncio.run(spawn_join(n)))
    try:
        import uvloop

        out["uvloop_spawn_join_per_s"] = median_rate(5, n, lambda: uvloop.run(spawn_join(n)))
    except ImportError:
        pass
    return out


def ensure_uvloop():
    try:
        import uvloop  # noqa: F401
    except ImportError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "uvloop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def conlab_side():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = ["cargo", "run", "--quiet", "--release", "-p", "conlab-exec", "--example", "throughput"]
    if QUICK:
        args += ["--", "1"]
    done = subprocess.run(args, cwd=root, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    ensure_uvloop()
    py = python_side()
    rs = conlab_side()
    rows = [
        ("threads: submit + result (tasks/s)", "threads_submit_wait_per_s", "threads_submit_wait_per_s"),
        ("threads: one at a time (round trips/s)", "threads_round_trips_per_s", "threads_round_trips_per_s"),
        ("processes: submit + result, chunk 1 (tasks/s)", "processes_submit_wait_per_s", "processes_submit_wait_per_s"),
        ("processes: map with chunks (items/s)", "processes_map_items_per_s", "processes_map_items_per_s"),
        ("async: spawn + join (tasks/s) vs asyncio", "async_spawn_join_per_s", "async_spawn_join_per_s"),
        ("async: spawn + join (tasks/s) vs uvloop", "uvloop_spawn_join_per_s", "async_spawn_join_per_s"),
    ]
    print(f"{'measure':<48} {'Python 3.11':>14} {'conlab':>14} {'ratio':>8}")
    for label, py_key, rs_key in rows:
        if py_key not in py:
            continue
        p, r = py[py_key], rs[rs_key]
        print(f"{label:<48} {p:>14,.0f} {r:>14,.0f} {r / p:>7.1f}x")
    print(f"{'threads: map over 10M no-op items (items/s)':<48} {'':>14} {rs['threads_map_items_per_s']:>14,.0f}")
    print(f"{'threads: idle CPU 0-200 ms after the queue empties':<48} {'':>14} {rs['threads_idle_cpu_percent']:>13.1f}%")
    print(f"{'bare tokio spawn + join, same run (tasks/s)':<48} {'':>14} {rs['tokio_bare_spawn_join_per_s']:>14,.0f}")


if __name__ == "__main__":
    main()
