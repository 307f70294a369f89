"""Load test for `goengine serve`: concurrent streaming clients on loopback.

    python scripts/load_serve.py --model demo/model.gguf [--clients 16] [--duration 30]

starts `bin/goengine serve` on a free loopback port (or uses --url, which must be a
loopback address), runs --clients threads that each send streaming completions back to
back for --duration seconds (at most --max-requests in all), and prints requests/s,
generated tokens/s, time to first token (p50/p99), latency, and errors by kind. It
samples /health during the run and checks that the server's heap stays bounded and that
its goroutines return to their idle count afterwards (exit status 1 if not).
Only the standard library: nothing to install.
"""

import argparse
import http.client
import ipaddress
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent


def health(host, port):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/health")
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body


def one_request(host, port, body):
    """One streaming completion: (status, time to first token, total time, tokens)."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            resp.read()
            return resp.status, None, time.perf_counter() - start, 0
        first, tokens = None, 0
        for line in resp:
            line = line.strip()
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                return "stream error", first, time.perf_counter() - start, tokens
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            elif first is None and chunk["choices"] and chunk["choices"][0].get("text"):
                first = time.perf_counter() - start
        return 200, first, time.perf_counter() - start, tokens
    except (OSError, http.client.HTTPException) as e:
        return type(e).__name__, None, time.perf_counter() - start, 0
    finally:
        conn.close()


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model file: start bin/goengine serve on it")
    ap.add_argument("--url", help="or: a running server, e.g. http://127.0.0.1:8080 (loopback only)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=30, help="seconds to send requests (at most 600)")
    ap.add_argument("--max-requests", type=int, default=100_000)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--prompt", default="Once upon a time")
    ap.add_argument("--parallel", type=int, default=4, help="with --model: the server's --parallel")
    ap.add_argument("--queue", type=int, default=16, help="with --model: the server's --queue")
    args = ap.parse_args()
    if (args.model is None) == (args.url is None):
        ap.error("give exactly one of --model and --url")
    if not (0 < args.duration <= 600 and 0 < args.clients <= 256):
        ap.error("--duration must be in (0, 600] and --clients in 1..256")

    server = None
    if args.model:
        binary = ROOT / "bin" / "goengine"
        subprocess.run(["go", "build", "-o", str(binary), "./cmd/goengine"], cwd=ROOT / "goengine", check=True)
        port = free_port()
        server = subprocess.Popen([str(binary), "serve", "--model", args.model, "--addr", f"127.0.0.1:{port}",
                                   "--parallel", str(args.parallel), "--queue", str(args.queue)],
                                  stdout=subprocess.PIPE, text=True)
        server.stdout.readline()  # "serving ..." once it listens
        host = "127.0.0.1"
    else:
        url = urlparse(args.url)
        host, port = url.hostname, url.port or 80
        if not ipaddress.ip_address(socket.gethostbyname(host)).is_loopback:
            ap.error(f"{host} is not a loopback address: this script only loads a local server")
    try:
        before = health(host, port)
        body = json.dumps({"prompt": args.prompt, "max_tokens": args.max_tokens, "temperature": 0.8,
                           "stream": True, "stream_options": {"include_usage": True}})
        results, lock = [], threading.Lock()
        deadline = time.perf_counter() + args.duration
        sent = [0]

        def client():
            while time.perf_counter() < deadline:
                with lock:
                    if sent[0] >= args.max_requests:
                        return
                    sent[0] += 1
                r = one_request(host, port, body)
                with lock:
                    results.append(r)

        samples = []

        def sampler():
            while time.perf_counter() < deadline:
                samples.append(health(host, port))
                time.sleep(1)

        threads = [threading.Thread(target=client) for _ in range(args.clients)] + [threading.Thread(target=sampler)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        after = health(host, port)
        for _ in range(50):  # idle workers and connections wind down
            if after["active"] == 0 and after["goroutines"] <= before["goroutines"] + 2:
                break
            time.sleep(0.1)
            after = health(host, port)
    finally:
        if server:
            server.terminate()
            server.wait(timeout=30)

    ok = [r for r in results if r[0] == 200]
    errors = {}
    for r in results:
        if r[0] != 200:
            errors[str(r[0])] = errors.get(str(r[0]), 0) + 1
    ttft = [r[1] for r in ok if r[1] is not None]
    tokens = sum(r[3] for r in ok)
    heap_max = max([s["heap_bytes"] for s in samples] + [after["heap_bytes"]])
    rows = [
        ("clients", f"{args.clients} streaming, {args.max_tokens} tokens each, {elapsed:.1f} s"),
        ("requests", f"{len(results)} ({len(ok)} ok)"),
        ("requests/s", f"{len(ok) / elapsed:.2f}"),
        ("generated tokens/s", f"{tokens / elapsed:.1f}"),
        ("time to first token p50 / p99", f"{1000 * percentile(ttft, 50):.0f} / {1000 * percentile(ttft, 99):.0f} ms"),
        ("latency p50 / p99", f"{percentile([r[2] for r in ok], 50):.2f} / {percentile([r[2] for r in ok], 99):.2f} s"),
        ("errors", ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "none"),
        ("server heap before / max / after", f"{before['heap_bytes'] >> 20} / {heap_max >> 20} / {after['heap_bytes'] >> 20} MiB"),
        ("server goroutines before / after", f"{before['goroutines']} / {after['goroutines']}"),
        ("mean decode batch (server)", f"{after.get('mean_batch', float('nan')):.2f}"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    leak = after["goroutines"] > before["goroutines"] + 2 or after["active"] != 0
    unbounded = heap_max > 4 * max(before["heap_bytes"], 64 << 20)
    if leak or unbounded or not ok:
        print("FAIL:", "goroutines or sessions did not return to idle" if leak else "",
              "heap grew past 4x" if unbounded else "", "no request succeeded" if not ok else "")
        sys.exit(1)


if __name__ == "__main__":
    main()
