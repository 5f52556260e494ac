#!/usr/bin/env python3
"""Example mcpgate HTTP connector "notes", using only the Python standard library.

Implements every endpoint of docs/connector-contract.md:

    GET  /info
    GET  /tools
    POST /tools/{name}/execute      body {"arguments": {...}}
    GET  /resources
    GET  /resources/{uri}           uri percent-encoded as one path segment
    GET  /prompts
    GET  /prompts/{name}?arg=value

Usage:
    python3 connector.py --port PORT

Binds 127.0.0.1 only. The first stdout line is "listening on 127.0.0.1:<port>"
(useful with --port 0, which picks a free port).

If the environment variable NOTES_TOKEN is set, every request must carry
"Authorization: Bearer <NOTES_TOKEN>" (401 otherwise), which is how a connector
authenticates the gateway (see the `headers` setting in config/connectors.yaml).
"""

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

INFO = {
    "name": "notes",
    "version": "1.0.0",
    "description": "Example connector: echo and add tools, two notes, one prompt.",
}

TOOLS = [
    {
        "name": "echo",
        "title": "Echo",
        "description": "Returns the given text unchanged.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string", "description": "Text to echo back."}},
            "required": ["text"],
        },
    },
    {
        "name": "add",
        "title": "Add two numbers",
        "description": "Returns the sum of a and b.",
        "inputSchema": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
        "annotations": {"readOnlyHint": True},
    },
    {
        "name": "fail",
        "description": "Always fails (answers HTTP 500); useful to test error handling.",
        "inputSchema": {"type": "object", "properties": {}},
    },
]

RESOURCES = {
    "file://README.md": {
        "name": "README",
        "description": "What this connector is.",
        "mimeType": "text/markdown",
        "text": "# notes\n\nAn example mcpgate connector written with the Python standard library.\n",
    },
    "memo://today": {
        "name": "today",
        "description": "Today's memo.",
        "mimeType": "text/plain",
        "text": "Remember to test the gateway.\n",
    },
}

PROMPTS = [
    {
        "name": "summarize",
        "description": "Ask the model to summarize a topic.",
        "arguments": [{"name": "topic", "description": "What to summarize.", "required": True}],
    }
]


class ToolError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def run_tool(name, args):
    if name == "echo":
        text = args.get("text")
        if not isinstance(text, str):
            raise ToolError(400, "argument 'text' (string) is required")
        return {"content": [{"type": "text", "text": text}], "isError": False}
    if name == "add":
        a, b = args.get("a"), args.get("b")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)):
            raise ToolError(400, "arguments 'a' and 'b' must be numbers")
        return {"content": [{"type": "text", "text": str(a + b)}], "isError": False}
    if name == "fail":
        raise ToolError(500, "the fail tool always fails")
    raise ToolError(404, f"unknown tool: {name}")


class Handler(BaseHTTPRequestHandler):
    server_version = "notes-connector/1.0"
    protocol_version = "HTTP/1.1"  # keep-alive; every answer sets Content-Length

    def log_message(self, fmt, *args):  # log to stderr, keep stdout for the port line
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def send_json(self, status, obj):
        body = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorized(self):
        token = os.environ.get("NOTES_TOKEN")
        if token and self.headers.get("Authorization") != f"Bearer {token}":
            self.send_json(401, {"error": "missing or wrong bearer token"})
            return False
        return True

    def route(self):
        parts = urlsplit(self.path)
        # Split on "/" BEFORE decoding so that an encoded "/" (%2F) stays inside its segment.
        segments = [unquote(s) for s in parts.path.split("/") if s != ""]
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        return segments, query

    def do_GET(self):
        if not self.authorized():
            return
        segs, query = self.route()
        if segs == ["info"]:
            return self.send_json(200, INFO)
        if segs == ["tools"]:
            return self.send_json(200, {"tools": TOOLS})
        if segs == ["resources"]:
            listing = [
                {"uri": uri, "name": r["name"], "description": r["description"], "mimeType": r["mimeType"]}
                for uri, r in RESOURCES.items()
            ]
            return self.send_json(200, {"resources": listing})
        if len(segs) == 2 and segs[0] == "resources":
            res = RESOURCES.get(segs[1])
            if res is None:
                return self.send_json(404, {"error": f"unknown resource: {segs[1]}"})
            return self.send_json(200, {"contents": [{"uri": segs[1], "mimeType": res["mimeType"], "text": res["text"]}]})
        if segs == ["prompts"]:
            return self.send_json(200, {"prompts": PROMPTS})
        if len(segs) == 2 and segs[0] == "prompts":
            if segs[1] != "summarize":
                return self.send_json(404, {"error": f"unknown prompt: {segs[1]}"})
            topic = query.get("topic", "").strip()
            if not topic:
                return self.send_json(400, {"error": "missing required argument: topic"})
            return self.send_json(200, {
                "description": "Summarize a topic",
                "messages": [{"role": "user", "content": {"type": "text", "text": f"Summarize what is known about {topic}."}}],
            })
        return self.send_json(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if not self.authorized():
            return
        segs, _ = self.route()
        if len(segs) == 3 and segs[0] == "tools" and segs[2] == "execute":
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return self.send_json(400, {"error": "body is not JSON"})
            args = body.get("arguments") if isinstance(body, dict) else None
            if args is None:
                args = {}
            if not isinstance(args, dict):
                return self.send_json(400, {"error": "'arguments' must be an object"})
            try:
                return self.send_json(200, run_tool(segs[1], args))
            except ToolError as e:
                return self.send_json(e.status, {"error": e.message})
        return self.send_json(404, {"error": "not found"})


def main():
    parser = argparse.ArgumentParser(description="Example mcpgate HTTP connector (notes).")
    parser.add_argument("--port", type=int, default=8081, help="port on 127.0.0.1 (0 = any free port)")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
