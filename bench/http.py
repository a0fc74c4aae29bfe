#!/usr/bin/env python3
"""conlab serve vs nginx and Apache, conlab load vs wrk: side by side in one run.

    python3 bench/http.py            # installs nginx-light, apache2 and wrk with apt-get if missing
    ROUNDS=7 DURATION=5 python3 bench/http.py

Server pinned to CPU 0, client to CPU 1 (taskset). wrk saturates its core before a fast
server does, so servers are compared in requests per server CPU-second (utime+stime of the
server's whole process tree, from /proc), generators in requests per generator CPU-second.
This VM's speed drifts by 2x within minutes, so every comparison alternates its contenders
for ROUNDS rounds and prints medians: a ratio is only taken between figures of one run.
"""

import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from common import free_port, median, wait_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONLAB = os.path.join(ROOT, "target", "release", "conlab")
SECONDS = int(os.environ.get("DURATION", 3))
ROUNDS = int(os.environ.get("ROUNDS", 5))
HZ = os.sysconf("SC_CLK_TCK")


def ensure(*packages):
    missing = [p for p, binary in packages if not shutil.which(binary)]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


def tree(pid):
    """pid and all its descendants (Apache's and conlab prefork's workers)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(parents.get(p, []))
    return found


def cpu_by_pid(pid):
    """utime+stime in seconds of each process of the tree, by pid."""
    times = {}
    for p in tree(pid):
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        times[p] = (int(fields[11]) + int(fields[12])) / HZ
    return times


def cpu_since(pid, before):
    """CPU seconds the tree used since the `cpu_by_pid` snapshot `before`. A worker that
    exited in between is left out rather than counted negative (Apache recycles children)."""
    return sum(t - before.get(p, 0.0) for p, t in cpu_by_pid(pid).items())


def pss_mib(pid):
    """Proportional set size of the tree: shared pages counted once, unlike summed RSS."""
    total = 0
    for p in tree(pid):
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def start_nginx(port, tmp):
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; master_process off;
error_log {tmp}/error.log; pid {tmp}/nginx.pid;
events {{ worker_connections 4096; }}
http {{ access_log off;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{ listen 127.0.0.1:{port}; location /hello {{ return 200 "Hello, World!"; }} }} }}
""")
    p = subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", conf, "-p", tmp], stderr=subprocess.DEVNULL)
    wait_port(port)
    return p


def start_conlab(port, model="event", workers=1, pin=True):
    """`conlab serve` on `port`, pinned to CPU 0 unless `pin` is false."""
    taskset = ["taskset", "-c", "0"] if pin else []
    p = subprocess.Popen([*taskset, CONLAB, "serve", "--model", model, "--workers", str(workers),
                          "--bind", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL)
    wait_port(port)
    return p


def start_apache(port, tmp, mpm, workers, pin=True):
    """Apache httpd with one MPM: prefork (`workers` processes) or event (one process of
    `workers` threads); /hello is a 13-byte static file, keep-alive unlimited."""
    root = os.path.join(tmp, f"apache-{mpm}")
    www = os.path.join(root, "www")
    os.makedirs(www)
    for d in (tmp, root, www):
        os.chmod(d, 0o755)
    with open(os.path.join(www, "hello"), "w") as f:
        f.write("Hello, World!")
    if mpm == "prefork":
        sizing = f"""StartServers {workers}
MinSpareServers {workers}
MaxSpareServers {workers}
ServerLimit {workers}
MaxRequestWorkers {workers}"""
    else:
        sizing = f"""StartServers 1
ServerLimit 1
ThreadLimit {workers}
ThreadsPerChild {workers}
MinSpareThreads 1
MaxSpareThreads {workers}
MaxRequestWorkers {workers}"""
    conf = os.path.join(root, "httpd.conf")
    with open(conf, "w") as f:
        f.write(f"""ServerRoot {root}
ServerName localhost
LoadModule mpm_{mpm}_module /usr/lib/apache2/modules/mod_mpm_{mpm}.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
Listen 127.0.0.1:{port}
PidFile {root}/httpd.pid
ErrorLog {root}/error.log
User www-data
Group www-data
DocumentRoot {www}
<Directory {www}>
  Require all granted
</Directory>
KeepAlive On
MaxKeepAliveRequests 0
MaxConnectionsPerChild 0
{sizing}
""")
    # Its own session: at shutdown Apache signals its whole process group, which would
    # otherwise include this script.
    taskset = ["taskset", "-c", "0"] if pin else []
    p = subprocess.Popen([*taskset, "apache2", "-f", conf, "-DFOREGROUND"], stderr=subprocess.DEVNULL,
                         start_new_session=True)
    wait_port(port)
    # Every worker up before the clock starts, as conlab's are.
    for _ in range(100):
        if mpm == "event" or len(tree(p.pid)) > workers:
            break
        time.sleep(0.05)
    return p


def client(argv):
    """Runs a generator pinned to CPU 1; returns (stdout, its CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["taskset", "-c", "1", *argv], check=True, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def wrk(url, connections=50):
    out, cpu = client(["wrk", "-t1", f"-c{connections}", f"-d{SECONDS}s", "--latency", url])
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)] if p99 else float("nan")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    return total, float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), cpu, p99_ms, errors


def conlab_load(url, connections=50, pipeline=1):
    import json
    out, cpu = client([CONLAB, "load", "-t", "1", "-c", str(connections), "-d", f"{SECONDS}s",
                       "--pipeline", str(pipeline), "--json", "-", url])
    r = json.loads(out)
    return r["requests"], r["requests_per_s"], cpu


def measure_server(proc, url, connections):
    before = cpu_by_pid(proc.pid)
    total, rps, _, p99, errors = wrk(url, connections)
    server_cpu = cpu_since(proc.pid, before)
    return {"rps": rps, "per_cpu_s": total / max(server_cpu, 1e-9), "p99": p99, "errors": errors}


def compare_servers(title, servers, connections, baseline):
    """ROUNDS alternating wrk runs against each server; prints medians and ratios to `baseline`."""
    runs = {name: [] for name in servers}
    for _ in range(ROUNDS):
        for name, (proc, url) in servers.items():
            runs[name].append(measure_server(proc, url, connections))
    print(f"{title}: /hello, wrk -t1 -c{connections} -d{SECONDS}s x {ROUNDS} rounds (medians), server on CPU 0, wrk on CPU 1")
    print(f"{'server':<18} {'req/s':>10} {'req per CPU-s':>14} {'p99':>9} {'errors':>7} {'PSS':>10} {'procs':>6}")
    rows = {}
    for name, (proc, _) in servers.items():
        r = {k: median([run[k] for run in runs[name]]) for k in ("rps", "per_cpu_s", "p99")}
        r["errors"] = sum(run["errors"] for run in runs[name])
        r["pss"], r["procs"] = pss_mib(proc.pid), len(tree(proc.pid))
        rows[name] = r
        print(f"{name:<18} {r['rps']:>10,.0f} {r['per_cpu_s']:>14,.0f} {r['p99']:>7.2f}ms {r['errors']:>7} "
              f"{r['pss']:>7.1f}MiB {r['procs']:>6}")
    base = rows[baseline]
    for name, r in rows.items():
        if name != baseline:
            # Each round's pair ran back to back, so a per-round ratio cancels the machine's
            # drift between rounds; the median of those is the headline.
            paired = {k: median([mine[k] / theirs[k] for mine, theirs in zip(runs[name], runs[baseline])])
                      for k in ("rps", "per_cpu_s")}
            print(f"{name} / {baseline}, median of per-round ratios: {paired['rps']:.2f}x req/s, "
                  f"{paired['per_cpu_s']:.2f}x req per CPU-second; {r['pss'] / base['pss']:.2f}x PSS")
    print()


def stop(procs):
    for proc in procs:
        proc.terminate()
        proc.wait()


def nginx_vs_event(tmp):
    servers = {}
    port = free_port()
    servers["nginx"] = (start_nginx(port, tmp), f"http://127.0.0.1:{port}/hello")
    port = free_port()
    servers["conlab event"] = (start_conlab(port), f"http://127.0.0.1:{port}/hello")
    try:
        compare_servers("nginx (1 worker) vs conlab serve --model event --workers 1", servers, 50, "nginx")

        nginx_url = servers["nginx"][1]
        wrk_runs, load_runs = [], []
        for _ in range(ROUNDS):
            total, _, cpu, _, _ = wrk(nginx_url)
            wrk_runs.append(total / cpu)
            total, _, cpu = conlab_load(nginx_url)
            load_runs.append(total / cpu)
        print(f"generators against nginx, -t1 -c50 -d{SECONDS}s x {ROUNDS} rounds (medians), generator on CPU 1")
        print(f"{'generator':<14} {'req per CPU-s':>15}")
        print(f"{'wrk':<14} {median(wrk_runs):>15,.0f}")
        print(f"{'conlab load':<14} {median(load_runs):>15,.0f}")
        paired = median([mine / theirs for mine, theirs in zip(load_runs, wrk_runs)])
        print(f"conlab load / wrk, median of per-round ratios: {paired:.2f}x req per CPU-second")
        print()

        print(f"pipelining: conlab load --pipeline 16 -c10 -t1 -d{SECONDS}s, server on CPU 0")
        for name, (proc, url) in servers.items():
            before = cpu_by_pid(proc.pid)
            total, rps, _ = conlab_load(url, connections=10, pipeline=16)
            cpu = cpu_since(proc.pid, before)
            print(f"{name:<14} {rps:>12,.0f} req/s, server CPU {cpu / SECONDS * 100:.0f}%")
        print()
    finally:
        stop(p for p, _ in servers.values())


def apache_vs_conlab(tmp, connections=100):
    """The lecture's Apache side: prefork processes and the event MPM, against conlab's
    prefork and event models on the same core, at c=100 with 100 workers where it applies."""
    servers = {}
    try:
        for name, start in (
            ("apache prefork", lambda port: start_apache(port, tmp, "prefork", connections)),
            ("conlab prefork", lambda port: start_conlab(port, "prefork", connections)),
            ("apache event", lambda port: start_apache(port, tmp, "event", connections)),
            ("conlab event", lambda port: start_conlab(port, "event", 1)),
        ):
            port = free_port()
            servers[name] = (start(port), f"http://127.0.0.1:{port}/hello")
        prefork = {k: v for k, v in servers.items() if "prefork" in k}
        compare_servers(f"Apache prefork vs conlab prefork, {connections} processes each", prefork, connections,
                        "apache prefork")
        event = {k: v for k, v in servers.items() if "event" in k}
        compare_servers(f"Apache event MPM (1 process, {connections} threads) vs conlab event (1 loop)", event,
                        connections, "apache event")
    finally:
        stop(p for p, _ in servers.values())


def main():
    ensure(("nginx-light", "nginx"), ("wrk", "wrk"), ("apache2", "apache2"))
    subprocess.run(["cargo", "build", "--quiet", "--release"], cwd=ROOT, check=True)
    only = sys.argv[1:] or ["nginx", "apache"]
    with tempfile.TemporaryDirectory() as tmp:
        if "nginx" in only:
            nginx_vs_event(tmp)
        if "apache" in only:
            apache_vs_conlab(tmp)


if __name__ == "__main__":
    sys.exit(main())
