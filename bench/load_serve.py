"""A bounded load test of ``tgir serve`` on loopback: C concurrent clients, N requests in all.

    python bench/load_serve.py INDEX_DIR [--clients 4] [--requests 2000] [--max-seconds 300]

Starts the server as a subprocess on 127.0.0.1 (a free port), sends composed queries (random
catalog item + a modification text) as JSON, and prints p50 / p90 / p99 latency, throughput
and the error count. It stops by itself after the request count or the time limit, whichever
comes first, and always stops the server.
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("index_dir")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--max-seconds", type=float, default=300)
    p.add_argument("-k", type=int, default=10)
    a = p.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tgir.cli", "serve", a.index_dir,
                               "--port", str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/health")
                health = json.loads(c.getresponse().read())
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    print(server.stdout.read().decode()[-2000:] if server.stdout else "")
                    raise SystemExit("server did not start") from None
                time.sleep(0.3)
        c.request("GET", "/items?limit=200")
        ids = [it["id"] for it in json.loads(c.getresponse().read())["items"]]
        print(f"server up: {health['items']} items, model {health['model']}; "
              f"{a.clients} clients x {a.requests} requests")
        lat: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        counter = iter(range(a.requests))
        stop_at = time.time() + a.max_seconds

        def client(seed: int) -> None:
            rng = random.Random(seed)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            while time.time() < stop_at:
                with lock:
                    if next(counter, None) is None:
                        return
                body = json.dumps({"item_id": rng.choice(ids), "text": rng.choice(TEXTS),
                                   "k": a.k})
                t = time.perf_counter()
                try:
                    conn.request("POST", "/search", body, {"content-type": "application/json"})
                    r = conn.getresponse()
                    data = r.read()
                    ok = r.status == 200 and len(json.loads(data)["results"]) == a.k
                except (OSError, http.client.HTTPException, ValueError) as e:
                    ok, data = False, str(e).encode()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                dt = time.perf_counter() - t
                with lock:
                    lat.append(dt)
                    if not ok:
                        errors.append(data[:200].decode(errors="replace"))

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        ms = 1e3 * np.array(lat)
        print(f"{len(lat)} requests in {wall:.1f} s = {len(lat) / wall:.0f} req/s; latency "
              f"p50 {np.percentile(ms, 50):.1f} ms, p90 {np.percentile(ms, 90):.1f} ms, p99 "
              f"{np.percentile(ms, 99):.1f} ms; errors {len(errors)}")
        for e in errors[:3]:
            print("  error:", e)
        return 1 if errors else 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
