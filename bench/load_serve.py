"""A bounded load test of ``tgir serve`` on loopback: C concurrent clients, N requests in all.

    python bench/load_serve.py INDEX_DIR [--clients 4] [--requests 2000] [--max-seconds 300]
                                         [--bad-fraction 0.3]

Starts the server as a subprocess on 127.0.0.1 (a free port), sends composed queries (random
catalog item + a modification text) as JSON, mixed with a share of bad requests (unknown or
traversal ids, malformed JSON, wrong types, huge k, wrong content type: each must get a 4xx),
and prints p50 / p90 / p99 latency of the good ones, throughput, errors, the status codes of
the bad ones and the server's memory (after warm-up, end, peak). It stops by itself after the
request count or the time limit, whichever comes first, and always stops the server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import subprocess
import sys
import threading
import time

import numpy as np

TEXTS = ["add small red circle to top-left", "remove middle-center large blue rectangle",
         "make bottom-right small green triangle large", "add large yellow triangle to top-right"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BAD_REQUESTS = [  # (method, path, body, content-type): each must get a 4xx, never a 5xx
    ("POST", "/search", json.dumps({"item_id": "no-such-item", "text": "add a red circle"}),
     "application/json"),
    ("POST", "/search", json.dumps({"item_id": "../../etc/passwd", "text": "x"}),
     "application/json"),
    ("POST", "/search", "{not json", "application/json"),
    ("POST", "/search", json.dumps({"item_id": 5, "text": 7}), "application/json"),
    ("POST", "/search", json.dumps({"text": "add a red circle", "k": 10 ** 9}),
     "application/json"),
    ("POST", "/search", "x" * 5000, "text/plain"),
    ("GET", "/items/..%2F..%2Fetc%2Fpasswd/image", None, None),
    ("GET", "/items?limit=100000", None, None),
]


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start_server(index_dir: str) -> tuple[subprocess.Popen, int, dict, list[str]]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tgir.cli", "serve", index_dir,
                               "--port", str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            health = json.loads(c.getresponse().read())
            break
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                print(server.stdout.read().decode()[-2000:] if server.stdout else "")
                raise SystemExit("server did not start") from None
            time.sleep(0.3)
    c.request("GET", "/items?limit=200")
    ids = [it["id"] for it in json.loads(c.getresponse().read())["items"]]
    return server, port, health, ids


def run_load(index_dir: str, clients: int = 4, requests: int = 2000, max_seconds: float = 300,
             bad_fraction: float = 0.0, k: int = 10, warmup: int = 20, seed: int = 0) -> dict:
    """Start ``tgir serve`` on ``index_dir``, send good composed queries mixed with a share of
    bad requests from ``clients`` threads, stop the server; return the statistics: latency
    percentiles of good requests, errors among good ones, status codes of bad ones, 5xx count,
    and the server's resident memory after the warm-up, at the end and at its peak."""
    server, port, health, ids = start_server(index_dir)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(warmup):
            conn.request("POST", "/search", json.dumps({"item_id": ids[i % len(ids)],
                                                        "text": TEXTS[i % len(TEXTS)], "k": k}),
                         {"content-type": "application/json"})
            conn.getresponse().read()
        rss = [rss_mb(server.pid)]
        lat: list[float] = []
        good_errors: list[str] = []
        bad_status: dict[int, int] = {}
        lock = threading.Lock()
        counter = iter(range(requests))
        stop_at = time.time() + max_seconds
        done = threading.Event()

        def sampler() -> None:
            while not done.wait(0.5):
                rss.append(rss_mb(server.pid))

        def client(cseed: int) -> None:
            rng = random.Random(cseed)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            while time.time() < stop_at:
                with lock:
                    if next(counter, None) is None:
                        return
                bad = rng.random() < bad_fraction
                if bad:
                    method, path, body, ctype = rng.choice(BAD_REQUESTS)
                else:
                    method, path, ctype = "POST", "/search", "application/json"
                    body = json.dumps({"item_id": rng.choice(ids), "text": rng.choice(TEXTS),
                                       "k": k})
                t = time.perf_counter()
                try:
                    conn.request(method, path, body, {"content-type": ctype} if ctype else {})
                    r = conn.getresponse()
                    data, status = r.read(), r.status
                    ok = (400 <= status < 500) if bad else (
                        status == 200 and len(json.loads(data)["results"]) == k)
                except (OSError, http.client.HTTPException, ValueError) as e:
                    ok, data, status = False, str(e).encode(), -1
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                dt = time.perf_counter() - t
                with lock:
                    if bad:
                        bad_status[status] = bad_status.get(status, 0) + 1
                    else:
                        lat.append(dt)
                        if not ok:
                            good_errors.append(f"{status} {data[:200].decode(errors='replace')}")

        mem = threading.Thread(target=sampler)
        mem.start()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(seed * 1000 + i,))
                   for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        done.set()
        mem.join()
        rss.append(rss_mb(server.pid))
        ms = 1e3 * np.array(lat) if lat else np.zeros(1)
        n_bad = sum(bad_status.values())
        return {"items": health["items"], "model": health["model"], "clients": clients,
                "good": len(lat), "bad": n_bad, "seconds": round(wall, 2),
                "req_per_s": round((len(lat) + n_bad) / wall, 1),
                "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
                "p99_ms": float(np.percentile(ms, 99)), "good_errors": good_errors,
                "bad_status": bad_status,
                "server_5xx": sum(v for s, v in bad_status.items() if s >= 500)
                + sum(e.startswith("5") for e in good_errors),
                "bad_not_4xx": sum(v for s, v in bad_status.items() if not 400 <= s < 500),
                "rss_mb": {"after_warmup": round(rss[0], 1), "end": round(rss[-1], 1),
                           "peak": round(max(rss), 1)}}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("index_dir")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--max-seconds", type=float, default=300)
    p.add_argument("--bad-fraction", type=float, default=0.0,
                   help="share of bad requests mixed in (each must get a 4xx)")
    p.add_argument("-k", type=int, default=10)
    a = p.parse_args()
    r = run_load(a.index_dir, a.clients, a.requests, a.max_seconds, a.bad_fraction, a.k)
    print(f"server: {r['items']} items, model {r['model']}; {a.clients} clients")
    print(f"{r['good']} good + {r['bad']} bad requests in {r['seconds']:.1f} s = "
          f"{r['req_per_s']:.0f} req/s; good latency p50 {r['p50_ms']:.1f} ms, p90 "
          f"{r['p90_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms; good errors "
          f"{len(r['good_errors'])}; bad answered {r['bad_status']}; 5xx {r['server_5xx']}")
    m = r["rss_mb"]
    print(f"server memory: {m['after_warmup']:.0f} MiB after warm-up, {m['end']:.0f} MiB at the "
          f"end, peak {m['peak']:.0f} MiB ({m['end'] - m['after_warmup']:+.1f} MiB)")
    for e in r["good_errors"][:3]:
        print("  error:", e)
    return 1 if r["good_errors"] or r["server_5xx"] or r["bad_not_4xx"] else 0


if __name__ == "__main__":
    sys.exit(main())
