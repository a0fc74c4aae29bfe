#!/usr/bin/env python3
"""conlab serve vs nginx, conlab load vs wrk: side by side in one run.

    python3 bench/http.py        # installs nginx-light and wrk with apt-get if missing

Server pinned to CPU 0, client to CPU 1 (taskset). wrk saturates its core before a fast
server does, so servers are compared in requests per server CPU-second (utime+stime from
/proc), generators in requests per generator CPU-second.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONLAB = os.path.join(ROOT, "target", "release", "conlab")
SECONDS = 5
HZ = os.sysconf("SC_CLK_TCK")


def ensure(*packages):
    missing = [p for p, binary in packages if not shutil.which(binary)]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


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


def start_conlab(port):
    p = subprocess.Popen(["taskset", "-c", "0", CONLAB, "serve", "--model", "event", "--workers", "1",
                          "--bind", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL)
    wait_port(port)
    return p


def client(argv):
    """Runs a generator pinned to CPU 1; returns (stdout, its CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["taskset", "-c", "1", *argv], check=True, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def wrk(url, connections=50):
    out, cpu = client(["wrk", "-t1", f"-c{connections}", f"-d{SECONDS}s", url])
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return total, float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), cpu


def conlab_load(url, connections=50, pipeline=1):
    import json
    out, cpu = client([CONLAB, "load", "-t", "1", "-c", str(connections), "-d", f"{SECONDS}s",
                       "--pipeline", str(pipeline), "--json", "-", url])
    r = json.loads(out)
    return r["requests"], r["requests_per_s"], cpu


def measure_server(name, proc, url):
    before = cpu_seconds(proc.pid)
    total, rps, _ = wrk(url)
    server_cpu = cpu_seconds(proc.pid) - before
    return {"server": name, "rps": rps, "per_cpu_s": total / max(server_cpu, 1e-9), "rss": rss_mib(proc.pid)}


def main():
    ensure(("nginx-light", "nginx"), ("wrk", "wrk"))
    subprocess.run(["cargo", "build", "--quiet", "--release"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        servers = {}
        port = free_port()
        nginx = start_nginx(port, tmp)
        servers["nginx"] = (nginx, f"http://127.0.0.1:{port}/hello")
        port = free_port()
        ours = start_conlab(port)
        servers["conlab event"] = (ours, f"http://127.0.0.1:{port}/hello")
        try:
            rows = [measure_server(n, p, u) for n, (p, u) in servers.items()]
            print(f"/hello, wrk -t1 -c50 -d{SECONDS}s, server on CPU 0, wrk on CPU 1")
            print(f"{'server':<14} {'req/s':>12} {'req per CPU-s':>15} {'RSS':>9}")
            for r in rows:
                print(f"{r['server']:<14} {r['rps']:>12,.0f} {r['per_cpu_s']:>15,.0f} {r['rss']:>7.1f}MiB")
            n, c = rows[0], rows[1]
            print(f"conlab/nginx: {c['rps'] / n['rps']:.2f}x req/s, {c['per_cpu_s'] / n['per_cpu_s']:.2f}x req per CPU-second, "
                  f"{c['rss'] / n['rss']:.2f}x RSS")
            print()
            nginx_url = servers["nginx"][1]
            wrk_total, wrk_rps, wrk_cpu = wrk(nginx_url)
            load_total, load_rps, load_cpu = conlab_load(nginx_url)
            print(f"generators against nginx, -t1 -c50 -d{SECONDS}s (generator on CPU 1)")
            print(f"{'generator':<14} {'req/s':>12} {'req per CPU-s':>15}")
            print(f"{'wrk':<14} {wrk_rps:>12,.0f} {wrk_total / wrk_cpu:>15,.0f}")
            print(f"{'conlab load':<14} {load_rps:>12,.0f} {load_total / load_cpu:>15,.0f}")
            print(f"conlab load / wrk: {(load_total / load_cpu) / (wrk_total / wrk_cpu):.2f}x req per CPU-second")
            print()
            print(f"pipelining: conlab load --pipeline 16 -c10 -t1 -d{SECONDS}s, server on CPU 0")
            for name, (proc, url) in servers.items():
                before = cpu_seconds(proc.pid)
                total, rps, _ = conlab_load(url, connections=10, pipeline=16)
                cpu = cpu_seconds(proc.pid) - before
                print(f"{name:<14} {rps:>12,.0f} req/s, server CPU {cpu / SECONDS * 100:.0f}%")
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait()


if __name__ == "__main__":
    sys.exit(main())
