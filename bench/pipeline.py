#!/usr/bin/env python3
"""`conlab pipeline` against its peers, in one run.

    python3 bench/pipeline.py          # installs golang-go, pigz and parallel with apt-get if missing

1. Hand-off: ITEMS (default 10M) no-op items through 4 stages on this machine's cores, against
   the same pipeline in Go (goroutines joined by buffered channels of 1024); items/s and the
   p99 item latency of both, median of 3.
2. gzip at level 6 on a ~256 MB mixed corpus (CORPUS_MB: logs, source-like text, 10%
   incompressible bytes): `conlab pipeline gzip` vs `pigz -p 2` vs `gzip`; wall, size, peak
   RSS; the output is checked with `gzip -t`. Then the same corpus as 64 files, compressed
   file by file, and a directory of SMALL_FILES (default 5000) small files:
   `conlab pipeline gzip DIR -o OUT` vs `pigz -k -r DIR` vs `parallel gzip -k ::: DIR/*`.
"""

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONLAB = os.environ.get("CONLAB", os.path.join(ROOT, "target", "release", "conlab"))
ITEMS = int(os.environ.get("ITEMS", "10000000"))
CORPUS_MB = int(os.environ.get("CORPUS_MB", "256"))
SMALL_FILES = int(os.environ.get("SMALL_FILES", "5000"))

GO_PIPELINE = r"""
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"
)

type item struct {
	seq  int
	born int64
}

func stage(in <-chan item) <-chan item {
	out := make(chan item, 1024)
	go func() {
		for it := range in {
			out <- it
		}
		close(out)
	}()
	return out
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	src := make(chan item, 1024)
	start := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			src <- item{i, time.Since(start).Nanoseconds()}
		}
		close(src)
	}()
	out := stage(stage(stage(stage(src))))
	lat := make([]int64, 0, n)
	for it := range out {
		lat = append(lat, time.Since(start).Nanoseconds()-it.born)
	}
	wall := time.Since(start).Seconds()
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	fmt.Printf("{\"items\": %d, \"wall_s\": %f, \"p99_ms\": %f}\n", len(lat), wall, float64(lat[len(lat)*99/100])/1e6)
}
"""


def ensure(tool, package):
    if shutil.which(tool):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env, stdout=subprocess.DEVNULL)


def timed(cmd, **kw):
    """Wall time and peak RSS (KiB) of `cmd`, via GNU time."""
    out = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + cmd, stderr=subprocess.PIPE, check=True, **kw)
    wall, rss = out.stderr.decode().strip().splitlines()[-1].split()
    return float(wall), int(rss)


def handoff():
    ensure("go", "golang-go")
    work = tempfile.mkdtemp(prefix="conlab-go-")
    with open(os.path.join(work, "main.go"), "w") as f:
        f.write(GO_PIPELINE)
    env = dict(os.environ, GOCACHE=os.path.join(work, "cache"), GO111MODULE="off")
    subprocess.run(["go", "build", "-o", os.path.join(work, "pipe"), os.path.join(work, "main.go")], check=True, env=env)
    go, ours = [], []
    for _ in range(3):
        g = json.loads(subprocess.run([os.path.join(work, "pipe"), str(ITEMS)], check=True, capture_output=True).stdout)
        go.append((g["items"] / g["wall_s"], g["p99_ms"]))
        r = json.loads(subprocess.run(
            [CONLAB, "pipeline", "--stages", "a:1:noop,b:1:noop,c:1:noop,d:1:noop", "--items", str(ITEMS),
             "--batch", "64", "--queue", "1024", "--json", "-"], check=True, capture_output=True).stdout)
        ours.append((r["throughput_per_s"], r["latency"]["p99_ms"]))
    shutil.rmtree(work, ignore_errors=True)
    g_rate, g_p99 = statistics.median(x[0] for x in go), statistics.median(x[1] for x in go)
    o_rate, o_p99 = statistics.median(x[0] for x in ours), statistics.median(x[1] for x in ours)
    print(f"hand-off: {ITEMS:,} no-op items through 4 stages (median of 3)")
    print(f"  Go, buffered channels (1024)      {g_rate:>12,.0f} items/s   p99 {g_p99:8.3f} ms")
    print(f"  conlab pipeline --batch 64        {o_rate:>12,.0f} items/s   p99 {o_p99:8.3f} ms")
    print(f"  conlab vs Go: {o_rate / g_rate:.2f}x the items/s\n")


def corpus(directory):
    """~CORPUS_MB of logs, source-like text and incompressible bytes, as 64 files."""
    rng = random.Random(42)
    words = ["GET", "POST", "/index.html", "/api/v1/items", "200", "404", "500", "gopher",
             "fn", "let", "mut", "return", "struct", "impl", "{", "}", "//", "pub"]
    per_file = CORPUS_MB * 1_000_000 // 64
    paths = []
    for i in range(64):
        path = os.path.join(directory, f"part-{i:02}.dat")
        with open(path, "wb") as f:
            if i % 10 == 9:
                f.write(rng.randbytes(per_file))
            else:
                lines = []
                size = 0
                while size < per_file:
                    if i % 2:
                        line = f"2026-12-01T12:{rng.randrange(60):02}:{rng.randrange(60):02} {rng.choice(words[:7])} {rng.randrange(10**6)} {rng.choice(words)}\n"
                    else:
                        line = "    " * rng.randrange(4) + " ".join(rng.choice(words[8:]) for _ in range(rng.randrange(3, 9))) + "\n"
                    lines.append(line)
                    size += len(line)
                f.write("".join(lines).encode()[:per_file])
        paths.append(path)
    return paths


def gzip_bench():
    ensure("pigz", "pigz")
    ensure("parallel", "parallel")
    work = tempfile.mkdtemp(prefix="conlab-gzip-")
    parts = os.path.join(work, "parts")
    os.mkdir(parts)
    paths = corpus(parts)
    whole = os.path.join(work, "corpus")
    with open(whole, "wb") as out:
        for p in paths:
            with open(p, "rb") as f:
                shutil.copyfileobj(f, out)
    size = os.path.getsize(whole)
    subprocess.run(["cat", whole], stdout=subprocess.DEVNULL, check=True)
    rows = {}
    for name, cmd, out in [
        ("conlab pipeline gzip", [CONLAB, "pipeline", "gzip", "-f", whole, "-o", whole + ".c.gz"], whole + ".c.gz"),
        ("pigz -p 2", ["sh", "-c", f"pigz -p 2 -c {whole} > {whole}.p.gz"], whole + ".p.gz"),
        ("gzip", ["sh", "-c", f"gzip -c {whole} > {whole}.g.gz"], whole + ".g.gz"),
    ]:
        runs = [timed(cmd) for _ in range(3 if name != "gzip" else 1)]
        subprocess.run(["gzip", "-t", out], check=True)
        rows[name] = (statistics.median(r[0] for r in runs), os.path.getsize(out), max(r[1] for r in runs))
    print(f"gzip -6 of a {size / 1e6:.0f} MB mixed corpus (median of 3; gzip once)")
    for name, (wall, out, rss) in rows.items():
        print(f"  {name:<22} {wall:6.2f} s  {out:>12,} bytes  peak RSS {rss / 1024:6.1f} MiB")
    c, p, g = rows["conlab pipeline gzip"], rows["pigz -p 2"], rows["gzip"]
    print(f"  conlab vs pigz: wall {c[0] / p[0]:.2f}x, size {c[1] / p[1]:.4f}x; vs gzip: {g[0] / c[0]:.2f}x faster\n")
    directory_case("the same corpus as 64 files", parts, os.path.join(work, "out"))
    small = os.path.join(work, "small")
    os.mkdir(small)
    rng = random.Random(7)
    words = [b"GET", b"POST", b"/index.html", b"200", b"404", b"gopher", b"cart", b"pile"]
    for i in range(SMALL_FILES):
        with open(os.path.join(small, f"f{i:05}.log"), "wb") as f:
            f.write(b" ".join(rng.choice(words) for _ in range(rng.randrange(500, 3000))))
    directory_case(f"{SMALL_FILES} small files (2-16 KB)", small, os.path.join(work, "out-small"))
    shutil.rmtree(work, ignore_errors=True)


def directory_case(label, parts, outdir):
    """A directory, file by file: conlab vs pigz -r vs GNU parallel + gzip (median of 3)."""
    def clean():
        shutil.rmtree(outdir, ignore_errors=True)
        for name in os.listdir(parts):
            if name.endswith(".gz"):
                os.remove(os.path.join(parts, name))
    rows = {}
    for name, cmd in [
        ("conlab pipeline gzip DIR -o OUT", [CONLAB, "pipeline", "gzip", parts, "-o", outdir]),
        ("pigz -p 2 -k -r DIR", ["pigz", "-p", "2", "-k", "-r", parts]),
        ("parallel -j2 gzip -k ::: DIR/*", ["sh", "-c", f"parallel -j2 gzip -k ::: {parts}/*"]),
    ]:
        runs = []
        for _ in range(3):
            clean()
            runs.append(timed(cmd)[0])
        rows[name] = statistics.median(runs)
    clean()
    print(f"{label}, each file to FILE.gz (median of 3)")
    ours = rows["conlab pipeline gzip DIR -o OUT"]
    for name, wall in rows.items():
        print(f"  {name:<34} {wall:6.2f} s  ({wall / ours:.2f}x conlab's)")
    print()


def main():
    if not os.path.exists(CONLAB):
        sys.exit(f"{CONLAB} is missing: run cargo build --release first")
    handoff()
    gzip_bench()


if __name__ == "__main__":
    main()
