#!/usr/bin/env python3
"""Interop check: the official Python MCP SDK (2.3+) as a 2026-07-28 client of mcpgate.

Usage:
    python3 python_stateless_client.py URL
    python3 python_stateless_client.py --stdio COMMAND [ARG...]

URL is the Streamable HTTP endpoint, e.g. http://127.0.0.1:8080/mcp; with --stdio the SDK
starts COMMAND (e.g. `mcpgate --config DIR stdio`) and speaks to it on stdin/stdout, passing
on this process's environment. Either way the tiny stdio server
(tests/interop/tiny_stdio_server.py) is behind the gateway as connector `tiny`.

`mcp.client.Client` in its default mode probes `server/discover` and, when the server
answers it, speaks the stateless revision. This lists tools, calls tiny_echo, calls
tiny_progress with a progress callback, and calls tiny_ask, whose backend asks for
sampling: the SDK receives the input request, runs its sampling callback and retries
by itself. It prints ONE JSON object on stdout describing what it saw; on any failure
it prints the error on stderr and exits 1.
"""

import asyncio
import json
import sys
import traceback
import warnings


async def run(target: list[str]) -> dict:
    import os

    import mcp_types as types
    from mcp.client import Client
    from mcp.client.stdio import StdioServerParameters

    if target[0] == "--stdio":
        server = StdioServerParameters(command=target[1], args=target[2:], env=dict(os.environ))
    else:
        server = target[0]

    sampled = []

    async def sampling(context, params):
        sampled.append(params.messages[0].content.text)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="from the python client"),
            model="interop",
        )

    progress = []

    async def on_progress(value, total, message):
        progress.append(value)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sampling is deprecated in 2026-07-28, still served
        async with Client(server, sampling_callback=sampling) as client:
            tools = await client.list_tools()
            echo = await client.call_tool("tiny_echo", {"text": "stateless hello"})
            stepped = await client.call_tool("tiny_progress", {}, progress_callback=on_progress)
            asked = await client.call_tool("tiny_ask", {})
            return {
                "protocol_version": client.protocol_version,
                "server_name": getattr(client.server_info, "name", None),
                "tools": sorted(t.name for t in tools.tools),
                "echo": echo.content[0].text,
                "progress": progress,
                "progress_text": stepped.content[0].text,
                "asked": asked.content[0].text,
                "sampled": sampled,
            }


def main() -> None:
    target = sys.argv[1:]
    if not target or target[0] in ("-h", "--help") or (target[0] == "--stdio" and len(target) < 2):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        seen = asyncio.run(run(target))
    except BaseException:  # noqa: BLE001 - report everything, exit 1
        traceback.print_exc()
        sys.exit(1)
    print(json.dumps(seen, sort_keys=True))


if __name__ == "__main__":
    main()
