#!/usr/bin/env python3
"""Interop check: drive an MCP server (normally mcpgate) with the official Python MCP SDK.

Usage:
    python3 python_client.py --transport sse|streamable-http URL

URL is the full endpoint, e.g. http://127.0.0.1:8080/mcp (streamable-http) or
http://127.0.0.1:8080/sse (sse).

It initializes a session, lists tools, calls notes_echo and notes_fail, lists
and reads resources, lists and gets prompts, then prints ONE JSON object on
stdout describing what it saw. On any failure it prints the error on stderr and
exits 1. Works with the `mcp` SDK 2.x (streamable_http_client) and 1.x
(streamablehttp_client).
"""

import argparse
import asyncio
import json
import sys
import traceback

try:
    BaseExceptionGroup
except NameError:  # Python 3.10 (mcp 1.x still supports it): isinstance(x, ()) is always False
    BaseExceptionGroup = ()


def _http_transport(url):
    try:  # mcp >= 2
        from mcp.client.streamable_http import streamable_http_client
    except ImportError:
        streamable_http_client = None
    if streamable_http_client is not None:
        return streamable_http_client(url)
    from mcp.client.streamable_http import streamablehttp_client  # mcp 1.x

    return streamablehttp_client(url)


def _sse_transport(url):
    from mcp.client.sse import sse_client

    return sse_client(url)


def _first_text(content):
    for item in content or []:
        text = getattr(item, "text", None)
        if text is not None:
            return text
    return None


def _dump(obj):
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    return obj


async def run(transport, url, timeout):
    from mcp import ClientSession

    ctx = _sse_transport(url) if transport == "sse" else _http_transport(url)
    out = {"transport": transport, "url": url}
    async with ctx as streams:
        # 1.x streamable-http yields (read, write, get_session_id); 2.x yields (read, write).
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            init = await asyncio.wait_for(session.initialize(), timeout)
            out["server_name"] = init.serverInfo.name if hasattr(init, "serverInfo") else init.server_info.name
            out["protocol_version"] = getattr(init, "protocolVersion", None) or getattr(init, "protocol_version", None)

            tools = await asyncio.wait_for(session.list_tools(), timeout)
            out["tools"] = [t.name for t in tools.tools]

            echo = await asyncio.wait_for(session.call_tool("notes_echo", {"text": "hello from python"}), timeout)
            out["echo"] = _first_text(echo.content)
            out["echo_is_error"] = bool(getattr(echo, "isError", None) or getattr(echo, "is_error", None))

            fail = await asyncio.wait_for(session.call_tool("notes_fail", {}), timeout)
            out["fail_is_error"] = bool(getattr(fail, "isError", None) or getattr(fail, "is_error", None))
            out["fail_text"] = _first_text(fail.content)

            resources = await asyncio.wait_for(session.list_resources(), timeout)
            out["resources"] = [str(r.uri) for r in resources.resources]

            readme = await asyncio.wait_for(session.read_resource("notes:file://README.md"), timeout)
            out["readme_text"] = next((c.text for c in readme.contents if getattr(c, "text", None) is not None), None)

            prompts = await asyncio.wait_for(session.list_prompts(), timeout)
            out["prompts"] = [p.name for p in prompts.prompts]

            prompt = await asyncio.wait_for(session.get_prompt("notes_summarize", {"topic": "rust"}), timeout)
            first = prompt.messages[0].content if prompt.messages else None
            out["summarize_text"] = getattr(first, "text", None) if first is not None else None
    return out


def _leaves(exc):
    """The innermost exceptions of (nested) exception groups, for a readable message."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transport", choices=["sse", "streamable-http"], required=True)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per MCP request (default 30)")
    parser.add_argument("--overall-timeout", type=float, default=120.0, help="seconds for the whole run (default 120)")
    parser.add_argument("url")
    args = parser.parse_args()
    try:
        out = asyncio.run(asyncio.wait_for(run(args.transport, args.url, args.timeout), args.overall_timeout))
    except BaseException as exc:  # includes ExceptionGroup from anyio task groups
        if isinstance(exc, KeyboardInterrupt):
            raise
        for leaf in _leaves(exc):
            detail = str(leaf) or ("timed out" if isinstance(leaf, TimeoutError) else repr(leaf))
            print(f"python_client: {type(leaf).__name__}: {detail}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        sys.exit(1)
    try:
        from importlib.metadata import version

        out["sdk_version"] = version("mcp")
    except Exception:
        pass
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
