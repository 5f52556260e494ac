#!/usr/bin/env python3
"""A tiny MCP server over stdio (standard library only), for the gateway's process tests.

Tools: `echo` (text), `progress` (`steps` progress notifications, three by default, with a
message of `bytes` bytes if given, then a result), `ask` (asks the client for a
sampling/createMessage, after `after_ms` if given, and returns its text), `crash` (exits at
once), `grow` (adds the tool `extra` and announces the change), `wait` (never answers; notes its cancellation),
`cancelled` (the ids of the requests cancelled so far), `long` (first answers with a line of
at least `bytes` bytes, then with the text `short`, both for the same request) and `deaf`
(answers, then never reads its input again).
With `--marker M` it starts a grandchild process whose command line holds M (and that keeps
the server's stdout open), so tests can check that the whole process group ends; with
`--stubborn` too, the grandchild ignores SIGTERM. Its first stderr line ends with `$TINY_SAY`. A
subscription to `tiny://slow` is taken after a second. `sleep` answers after `ms` milliseconds,
answering other requests meanwhile.
"""
import json
import os
import select
import subprocess
import sys
import time

TOOLS = [
    {"name": "echo", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
    {"name": "progress", "inputSchema": {"type": "object"}},
    {"name": "ask", "inputSchema": {"type": "object"}},
    {"name": "crash", "inputSchema": {"type": "object"}},
    {"name": "grow", "inputSchema": {"type": "object"}},
    {"name": "wait", "inputSchema": {"type": "object"}},
    {"name": "cancelled", "inputSchema": {"type": "object"}},
    {"name": "long", "inputSchema": {"type": "object", "properties": {"bytes": {"type": "integer"}}}},
    {"name": "deaf", "inputSchema": {"type": "object"}},
    {"name": "sleep", "inputSchema": {"type": "object", "properties": {"ms": {"type": "integer"}}}},
    {"name": "touch", "inputSchema": {"type": "object"}},
    {"name": "subscribed", "inputSchema": {"type": "object"}},
    {"name": "region", "inputSchema": {"type": "object", "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"},
        "zone": {"type": "integer", "x-mcp-header": "Zone"}}}},
]
CANCELLED = []
SUBSCRIBED = set()
NO_ANSWER = object()


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def text(value):
    return {"content": [{"type": "text", "text": value}]}


def read():
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    return json.loads(line)


def call(request):
    params = request.get("params") or {}
    name = params.get("name")
    if name == "echo":
        return text(params.get("arguments", {}).get("text", ""))
    if name == "touch":
        for uri in sorted(SUBSCRIBED):
            send({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": uri}})
        return text("touched")
    if name == "subscribed":
        return text(json.dumps(sorted(SUBSCRIBED)))
    if name == "region":
        return text(json.dumps(params.get("arguments", {}), sort_keys=True))
    if name == "crash":
        sys.exit(3)
    if name == "sleep":
        # Answers other requests (health checks) meanwhile, as a server that serves several at
        # once does.
        end = time.time() + params.get("arguments", {}).get("ms", 0) / 1000
        while (left := end - time.time()) > 0:
            if select.select([sys.stdin], [], [], left)[0]:
                answer(read())
        return text("slept")
    if name == "grow":
        if not any(t["name"] == "extra" for t in TOOLS):
            TOOLS.append({"name": "extra", "inputSchema": {"type": "object"}})
        send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        return text("grown")
    if name == "cancelled":
        return text(json.dumps(CANCELLED))
    if name == "deaf":
        send({"jsonrpc": "2.0", "id": request["id"], "result": text("deaf from now on")})
        time.sleep(600)
    if name == "long":
        size = params.get("arguments", {}).get("bytes", 0)
        send({"jsonrpc": "2.0", "id": request["id"], "result": text("x" * size)})
        return text("short")
    if name == "wait":
        while True:
            message = read()
            if message.get("method") == "notifications/cancelled":
                if message.get("params", {}).get("requestId") == request["id"]:
                    CANCELLED.append(request["id"])
                    return NO_ANSWER
                continue
            answer(message)
    if name == "progress":
        token = (params.get("_meta") or {}).get("progressToken")
        arguments = params.get("arguments", {})
        steps = arguments.get("steps", 3)
        for step in range(1, steps + 1):
            if token is not None:
                note = {"progressToken": token, "progress": step, "total": steps}
                if "bytes" in arguments:
                    note["message"] = "x" * arguments["bytes"]
                send({"jsonrpc": "2.0", "method": "notifications/progress", "params": note})
        return text("done")
    if name == "ask":
        # Requests that come meanwhile (for `after_ms`, then until the reply) are served after.
        later = []
        end = time.time() + params.get("arguments", {}).get("after_ms", 0) / 1000
        while (left := end - time.time()) > 0:
            if select.select([sys.stdin], [], [], left)[0]:
                later.append(read())
        send({"jsonrpc": "2.0", "id": "tiny-1", "method": "sampling/createMessage",
              "params": {"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}],
                         "maxTokens": 10}})
        while True:
            message = read()
            if message.get("id") == "tiny-1" and "method" not in message:
                break
            later.append(message)
        for waiting in later:
            answer(waiting)
        if "error" in message:
            return {"content": [{"type": "text", "text": "refused: " + message["error"]["message"]}],
                    "isError": True}
        return text("sampled: " + message["result"]["content"]["text"])
    raise KeyError(name)


def answer(request):
    """Answers one request (notifications and responses need no answer)."""
    method = request.get("method")
    if "id" not in request or method is None:
        return
    if method == "initialize":
        result = {"protocolVersion": request["params"]["protocolVersion"],
                  "capabilities": {"tools": {"listChanged": True},
                                   "resources": {"subscribe": True}},
                  "serverInfo": {"name": "tiny", "version": "1"}}
    elif method == "ping":
        result = {}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "resources/list":
        result = {"resources": [{"uri": "tiny://clock", "name": "clock"}]}
    elif method == "resources/read":
        result = {"contents": [{"uri": "tiny://clock", "text": "tick"}]}
    elif method == "resources/subscribe":
        if request["params"]["uri"] == "tiny://slow":
            time.sleep(1)
        elif request["params"]["uri"] != "tiny://clock":
            send({"jsonrpc": "2.0", "id": request["id"],
                  "error": {"code": -32602, "message": "unknown resource"}})
            return
        SUBSCRIBED.add(request["params"]["uri"])
        result = {}
    elif method == "resources/unsubscribe":
        SUBSCRIBED.discard(request["params"]["uri"])
        result = {}
    elif method == "tools/call":
        try:
            result = call(request)
        except KeyError:
            send({"jsonrpc": "2.0", "id": request["id"],
                  "error": {"code": -32602, "message": "unknown tool"}})
            return
        if result is NO_ANSWER:
            return
    else:
        send({"jsonrpc": "2.0", "id": request["id"],
              "error": {"code": -32601, "message": "method not found"}})
        return
    send({"jsonrpc": "2.0", "id": request["id"], "result": result})


def main():
    if "--marker" in sys.argv:
        marker = sys.argv[sys.argv.index("--marker") + 1]
        if "--stubborn" in sys.argv:
            # Waits until the grandchild ignores TERM, so that a test's TERM finds it doing so.
            ready, told = os.pipe()
            code = ("import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                    "os.write(int(sys.argv[2]), b'x'); time.sleep(600)")
            subprocess.Popen([sys.executable, "-c", code, marker, str(told)], pass_fds=(told,))
            os.close(told)
            os.read(ready, 1)
        else:
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker])
    print("tiny server ready", os.environ.get("TINY_SAY", ""), file=sys.stderr, flush=True)
    while True:
        answer(read())


main()
