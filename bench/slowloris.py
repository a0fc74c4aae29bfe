#!/usr/bin/env python3
"""What a slowloris does to each server architecture, side by side in one run.

    python3 bench/slowloris.py              # installs apache2 with apt-get if missing
    SLOW=40 DURATION=5 python3 bench/slowloris.py

For each server: `conlab load -c 10` on /hello alone, then again while SLOW slow clients
each hold a connection open by sending one header byte a second (reconnecting whenever the
server drops them). A server that gives a connection a worker of its own (prefork,
threadpool, Apache prefork) has SLOW >= its workers pinned until its header timeout; an event
loop keeps serving. No process is pinned to a CPU: every server may use both cores.
conlab's header timeout is 10 s (`--header-timeout-s`); Apache's
`Timeout` is 60 s without mod_reqtimeout, which this configuration leaves out, as a bare
Apache has it.
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

# bench/http.py's server start-up helpers, loaded by path: as `import http` it would shadow
# the standard library's http package.
_spec = importlib.util.spec_from_file_location("bench_http", os.path.join(os.path.dirname(os.path.abspath(__file__)), "http.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

SLOW = int(os.environ.get("SLOW", 40))
DURATION = int(os.environ.get("DURATION", 5))
WORKERS = 32


def slow_clients(port, count, stop):
    """`count` connections that send a request head one byte a second, never finishing it."""
    head = b"GET /hello HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 10_000

    def one():
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    for byte in head:
                        if stop.is_set():
                            return
                        s.sendall(bytes([byte]))
                        stop.wait(1.0)
            except OSError:
                stop.wait(0.1)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
    for t in threads:
        t.start()
    return threads


def load(port):
    out = subprocess.run([bench.CONLAB, "load", "-c", "10", "-t", "1", "-d", f"{DURATION}s", "--timeout", "2s",
                          "--json", "-", f"http://127.0.0.1:{port}/hello"],
                         capture_output=True, text=True).stdout
    # Exit status 1 means no request succeeded: for a pinned server that is the finding.
    r = json.loads(out)
    return r["requests_per_s"], r["latency_us"]["p99"] / 1000, sum(r["errors"].values())


def main():
    bench.ensure(("apache2", "apache2"))
    subprocess.run(["cargo", "build", "--quiet", "--release"], cwd=bench.ROOT, check=True)
    servers = [
        ("conlab prefork", lambda port, tmp: bench.start_conlab(port, "prefork", WORKERS, pin=False)),
        ("conlab threadpool", lambda port, tmp: bench.start_conlab(port, "threadpool", WORKERS, pin=False)),
        ("conlab event", lambda port, tmp: bench.start_conlab(port, "event", 2, pin=False)),
        ("apache prefork", lambda port, tmp: bench.start_apache(port, tmp, "prefork", WORKERS, pin=False)),
    ]
    print(f"/hello, conlab load -c10 -d{DURATION}s, alone and beside {SLOW} slow clients; "
          f"{WORKERS} workers where the model has them")
    print(f"{'server':<18} {'alone req/s':>12} {'beside req/s':>13} {'p99 alone':>10} {'p99 beside':>11} "
          f"{'errors':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, start in servers:
            port = bench.free_port()
            proc = start(port, tmp)
            try:
                alone, p99_alone, _ = load(port)
                stop = threading.Event()
                threads = slow_clients(port, SLOW, stop)
                time.sleep(1.0)  # let every slow client connect and start trickling
                beside, p99_beside, errors = load(port)
                stop.set()
                for t in threads:
                    t.join(timeout=3)
            finally:
                proc.terminate()
                proc.wait()
            print(f"{name:<18} {alone:>12,.0f} {beside:>13,.0f} {p99_alone:>8.2f}ms {p99_beside:>9.2f}ms "
                  f"{errors:>7}")


if __name__ == "__main__":
    sys.exit(main())
