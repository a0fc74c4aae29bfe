#!/usr/bin/env python3
"""conlab fetch vs the lecture's scrapers (aiohttp, threads + requests + BeautifulSoup), side by side.

    python3 bench/fetch.py                 # pages, slow, memory (installs nginx, aiohttp, bs4, requests)
    python3 bench/fetch.py pages           # one part only
    ROUNDS=5 PAGES=5000 python3 bench/fetch.py
    PIN=0 python3 bench/fetch.py pages     # scrapers not pinned to CPU 1

- pages: the same PAGES pages of ~4 KB with titles, from one nginx worker (CPU 0), every
  scraper on CPU 1 at concurrency 100: pages/s and CPU ms per page (user+system of the
  scraper's process), ROUNDS rounds alternating, medians. Every contender must find every
  title, or its figure is not printed.
- slow: 10,000 pages that each take 50 ms (`conlab serve`'s /site/N.html?ms=50) at
  concurrency 500: wall time against Little's law (10,000 x 50 ms / 500 = 1.0 s).
- memory: peak RSS of `conlab fetch` over 100,000 and 1,000,000 URLs (flat: the input is
  streamed, rows are not kept).
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
ROUNDS = int(os.environ.get("ROUNDS", 3))
PAGES = int(os.environ.get("PAGES", 5000))
# PIN=0: scrapers unpinned, free to use both cores (nginx still on CPU 0).
CLIENT = ["taskset", "-c", "1"] if os.environ.get("PIN", "1") != "0" else []

AIOHTTP = r'''
import asyncio, re, sys, aiohttp
TITLE = re.compile(rb"<title>(.*?)</title>", re.S | re.I)
async def one(session, sem, url, soup):
    async with sem:
        async with session.get(url) as r:
            body = await r.read()
    if soup:
        from bs4 import BeautifulSoup
        t = BeautifulSoup(body, "html.parser").title
        return t.string if t else None
    m = TITLE.search(body)
    return m.group(1).decode() if m else None
async def main(urls, soup):
    sem = asyncio.Semaphore(100)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as s:
        titles = await asyncio.gather(*(one(s, sem, u, soup) for u in urls))
    print(sum(1 for t in titles if t))
urls = open(sys.argv[1]).read().split()
asyncio.run(main(urls, sys.argv[2] == "bs4"))
'''

THREADS = r'''
import sys, threading, requests
from concurrent.futures import ThreadPoolExecutor
from bs4 import BeautifulSoup
local = threading.local()
def one(url):
    s = getattr(local, "s", None) or requests.Session()
    local.s = s
    t = BeautifulSoup(s.get(url).content, "html.parser").title
    return t.string if t else None
urls = open(sys.argv[1]).read().split()
with ThreadPoolExecutor(100) as ex:
    print(sum(1 for t in ex.map(one, urls) if t))
'''


def ensure():
    if not shutil.which("nginx"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], check=True, env=env, stdout=subprocess.DEVNULL)
    # Checked in a child started elsewhere: from bench/, `import aiohttp` finds bench/http.py
    # when it asks for the standard library's http.
    probe = [sys.executable, "-c", "import aiohttp, bs4, requests"]
    if subprocess.run(probe, cwd="/", stderr=subprocess.DEVNULL).returncode != 0:
        cmd = [sys.executable, "-m", "pip", "install", "-q", "aiohttp", "beautifulsoup4", "requests"]
        if subprocess.run(cmd).returncode != 0:
            subprocess.run(cmd + ["--break-system-packages"], check=True)
    if not os.path.exists(CONLAB):
        subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)


def timed(cmd, stdout=subprocess.PIPE):
    """Wall seconds, CPU seconds (user+system of the child), peak RSS in MiB, and stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    p = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode not in (0, 1):
        raise RuntimeError(f"{cmd}: exit {p.returncode}: {p.stderr.decode()[-500:]}")
    return wall, cpu, after.ru_maxrss / 1024, p.stdout


def start_nginx(tmp, root):
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; master_process off;
error_log {tmp}/error.log; pid {tmp}/nginx.pid;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000;
  types {{ text/html html; }}
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{ listen 127.0.0.1:{port}; root {root}; }} }}
""")
    p = subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", conf, "-p", tmp], stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port


def make_site(root, n):
    os.makedirs(root, exist_ok=True)
    filler = "".join(f"<p>Paragraph {i} of filler text, long enough to look like a page.</p>\n" for i in range(55))
    for i in range(n):
        with open(os.path.join(root, f"{i}.html"), "w") as f:
            f.write(f"<!doctype html><html><head><meta charset=utf-8><title>Page {i}</title></head><body>\n{filler}</body></html>\n")
    return os.path.getsize(os.path.join(root, "0.html"))


def titles_of_conlab(out):
    return sum(1 for line in out.decode().splitlines() if '"title":"Page' in line)


def pages(tmp):
    root = os.path.join(tmp, "site")
    size = make_site(root, PAGES)
    nginx, port = start_nginx(tmp, root)
    urls = os.path.join(tmp, "urls.txt")
    with open(urls, "w") as f:
        f.write("".join(f"http://127.0.0.1:{port}/{i}.html\n" for i in range(PAGES)))
    aio, thr = os.path.join(tmp, "aio.py"), os.path.join(tmp, "thr.py")
    open(aio, "w").write(AIOHTTP)
    open(thr, "w").write(THREADS)
    contenders = {
        "conlab fetch (async)": (CLIENT + [CONLAB, "fetch", "-q", "-c", "100", "-i", urls], titles_of_conlab),
        "conlab fetch --model threads": (CLIENT + [CONLAB, "fetch", "-q", "--model", "threads", "-c", "100", "-i", urls], titles_of_conlab),
        "aiohttp + regex": (CLIENT + [sys.executable, aio, urls, "re"], lambda o: int(o)),
        "aiohttp + bs4": (CLIENT + [sys.executable, aio, urls, "bs4"], lambda o: int(o)),
        "threads + requests + bs4": (CLIENT + [sys.executable, thr, urls], lambda o: int(o)),
    }
    figures = {name: [] for name in contenders}
    try:
        for _ in range(ROUNDS):
            for name, (cmd, count) in contenders.items():
                wall, cpu, _, out = timed(cmd)
                found = count(out)
                if found != PAGES:
                    raise RuntimeError(f"{name} found {found} titles of {PAGES}")
                figures[name].append((PAGES / wall, cpu / PAGES * 1000))
    finally:
        nginx.terminate()
        nginx.wait()
    where = "scrapers on CPU 1" if CLIENT else "scrapers unpinned"
    print(f"\n{PAGES} pages of {size} bytes from one nginx worker (CPU 0), {where}, concurrency 100,"
          f" {ROUNDS} rounds, medians; every title found by every contender")
    base = median([r for r, _ in figures["aiohttp + regex"]])
    base_cpu = median([c for _, c in figures["aiohttp + regex"]])
    print(f"  {'':32} {'pages/s':>9} {'CPU ms/page':>12} {'x aiohttp+regex':>16} {'CPU share':>10}")
    for name, rows in figures.items():
        rate, cpu = median([r for r, _ in rows]), median([c for _, c in rows])
        print(f"  {name:32} {rate:9.0f} {cpu:12.3f} {rate / base:15.2f}x {cpu / base_cpu:9.2f}x")


def start_conlab_serve():
    port = free_port()
    p = subprocess.Popen(["taskset", "-c", "0", CONLAB, "serve", "--model", "event", "--bind", f"127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port


def slow(tmp):
    server, port = start_conlab_serve()
    n, c, ms = 10000, 500, 50
    urls = os.path.join(tmp, "slow.txt")
    with open(urls, "w") as f:
        f.write("".join(f"http://127.0.0.1:{port}/site/{i % 1000}.html?ms={ms}&i={i}\n" for i in range(n)))
    aio = os.path.join(tmp, "aio500.py")
    open(aio, "w").write(AIOHTTP.replace("Semaphore(100)", f"Semaphore({c})").replace("limit=100", f"limit={c}"))
    ideal = n * ms / 1000 / c
    contenders = {
        "conlab fetch (async)": CLIENT + [CONLAB, "fetch", "-q", "-c", str(c), "-i", urls],
        "conlab fetch --model threads": CLIENT + [CONLAB, "fetch", "-q", "--model", "threads", "-c", str(c), "-i", urls],
        "aiohttp + regex": CLIENT + [sys.executable, aio, urls, "re"],
    }
    walls = {name: [] for name in contenders}
    try:
        for _ in range(ROUNDS):
            for name, cmd in contenders.items():
                wall, _, _, _ = timed(cmd)
                walls[name].append(wall)
    finally:
        server.terminate()
        server.wait()
    print(f"\n{n} pages of {ms} ms each at concurrency {c}; Little's law: {ideal:.2f} s; {ROUNDS} rounds, medians")
    for name, w in walls.items():
        print(f"  {name:32} {median(w):6.2f} s  ({median(w) / ideal:.2f}x the ideal)")


def memory(tmp):
    server, port = start_conlab_serve()
    try:
        print("\npeak RSS of conlab fetch -c 100 over N URLs (the input streamed, rows written and dropped)")
        for n in (100_000, 1_000_000):
            urls = os.path.join(tmp, f"mem{n}.txt")
            with open(urls, "w") as f:
                f.write("".join(f"http://127.0.0.1:{port}/site/{i % 1000}.html?i={i}\n" for i in range(n)))
            # A child of its own, so that ru_maxrss is this run's.
            probe = ("import resource,subprocess,sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL);"
                     "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", probe] + CLIENT + [CONLAB, "fetch", "-q", "-c", "100", "-i", urls],
                                 stdout=subprocess.PIPE, check=True).stdout
            wall = time.perf_counter() - start
            print(f"  {n:>9} URLs: {int(out) / 1024:6.1f} MiB peak, {n / wall:8.0f} pages/s")
            os.remove(urls)
    finally:
        server.terminate()
        server.wait()


def main():
    ensure()
    parts = sys.argv[1:] or ["pages", "slow", "memory"]
    with tempfile.TemporaryDirectory() as tmp:
        for part in parts:
            {"pages": pages, "slow": slow, "memory": memory}[part](tmp)


if __name__ == "__main__":
    main()
