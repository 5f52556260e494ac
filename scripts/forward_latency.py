"""Latency of tools/call through the gateway that holds the session (A) and through another
gateway that forwards it (B): sequential calls in alternating blocks (run by scripts/forward-latency)."""
import json, statistics, sys, time, urllib.request

A, B = sys.argv[1], sys.argv[2]
BLOCKS, PER_BLOCK = int(sys.argv[3]), int(sys.argv[4])

def post(url, body, session=None):
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if session:
        headers["mcp-session-id"] = session
    req = urllib.request.Request(url + "/mcp", data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(req) as resp:
        return resp.headers.get("mcp-session-id"), resp.read()

session, _ = post(A, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "m", "version": "0"}}})
post(A, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "up_echo", "arguments": {"text": "hi"}}}
for url in (A, B):  # warm up both paths
    for _ in range(200):
        _, body = post(url, call, session)
        assert b'"result"' in body, body
times = {A: [], B: []}
for block in range(BLOCKS):
    for url in ((A, B) if block % 2 == 0 else (B, A)):
        for _ in range(PER_BLOCK):
            start = time.perf_counter()
            post(url, call, session)
            times[url].append((time.perf_counter() - start) * 1000)
for name, url in (("holder (A)", A), ("forwarded (B)", B)):
    t = sorted(times[url])
    p = lambda q: t[min(len(t) - 1, int(q * len(t)))]
    print(f"{name}: n={len(t)} p50={p(0.5):.3f} ms p90={p(0.9):.3f} ms p99={p(0.99):.3f} ms mean={statistics.mean(t):.3f} ms")
