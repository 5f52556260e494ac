#!/usr/bin/env python3
"""Fixture MCP server for the official conformance suite (@modelcontextprotocol/conformance).

It exposes the tools, resources, prompts and completions that the suite's server
scenarios for the 2025-11-25 revision call, built on the official Python MCP SDK
(2.x, low-level `mcp.server.lowlevel.Server`, so every wire shape is spelled out here).

It answers both eras, as the SDK's server does: sessions (2025-11-25) and stateless requests
(2026-07-28). Every answer carries `resultType` (the 2025-11-25 wire drops it). The tools and
the prompt that ask the client for something (sampling, elicitation, roots) ask with a request
of their own in a session, and with an input request (`resultType: "input_required"`, under
the keys the suite's scenarios expect, with an HMAC-signed `requestState`) statelessly.

Usage:
    python fixture_server.py streamable-http --port PORT   # http://127.0.0.1:PORT/mcp
    python fixture_server.py streamable-http --port PORT --only-stateless   # 2026-07-28 only
    python fixture_server.py streamable-http --port PORT --resumable   # streams resume (Last-Event-ID)
    python fixture_server.py stdio

With `--port 0` the OS picks a free port; in every streamable-http run the first
stdout line is `listening on 127.0.0.1:<port>` (flushed) once the server accepts
requests. The HTTP server binds 127.0.0.1 only and rejects requests whose Host or
Origin header is not a loopback name (DNS-rebinding protection: 421 for a foreign
Host, 403 for a foreign Origin).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import io
import json
import os
import socket
import struct
import sys
import warnings
import wave
import zlib
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http import EventMessage, EventStore
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.shared.subscriptions import PromptsListChanged, ResourceUpdated, ToolsListChanged
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError

try:  # the SDK marks logging/sampling as deprecated for 2026-07-28; this fixture speaks 2025-11-25
    from mcp.shared.exceptions import MCPDeprecationWarning

    warnings.filterwarnings("ignore", category=MCPDeprecationWarning)
except ImportError:  # pragma: no cover
    pass

INVALID_PARAMS = -32602


# --------------------------------------------------------------------------------------
# Binary payloads, generated at start-up (no embedded blobs).


def _png_1x1_red() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte 0, then one red pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _wav_silence() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 80)  # 10 ms of silence
    return buf.getvalue()


PNG_B64 = base64.b64encode(_png_1x1_red()).decode("ascii")
WAV_B64 = base64.b64encode(_wav_silence()).decode("ascii")


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def image() -> dict[str, Any]:
    return {"type": "image", "data": PNG_B64, "mimeType": "image/png"}


def tool_result(*content: dict[str, Any], is_error: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {"content": list(content)}
    if is_error:
        result["isError"] = True
    return result


# --------------------------------------------------------------------------------------
# Tools

NO_ARGS = {"type": "object", "properties": {}}

JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}

TOOLS: list[dict[str, Any]] = [
    {"name": "test_simple_text", "description": "Returns a simple text response", "inputSchema": NO_ARGS},
    {"name": "test_image_content", "description": "Returns a 1x1 PNG image", "inputSchema": NO_ARGS},
    {"name": "test_audio_content", "description": "Returns a short WAV clip", "inputSchema": NO_ARGS},
    {"name": "test_embedded_resource", "description": "Returns an embedded text resource", "inputSchema": NO_ARGS},
    {
        "name": "test_multiple_content_types",
        "description": "Returns text, image and embedded resource content",
        "inputSchema": NO_ARGS,
    },
    {
        "name": "test_tool_with_logging",
        "description": "Sends three info log notifications while it runs",
        "inputSchema": NO_ARGS,
    },
    {
        "name": "test_tool_with_progress",
        "description": "Reports progress 0, 50, 100 of 100 when the request carries a progress token",
        "inputSchema": NO_ARGS,
    },
    {"name": "test_error_handling", "description": "Always returns an error result", "inputSchema": NO_ARGS},
    {
        "name": "test_sampling",
        "description": "Asks the client for an LLM completion (sampling/createMessage)",
        "inputSchema": {
            "type": "object",
            "properties": {"prompt": {"type": "string", "description": "The prompt to send to the LLM"}},
            "required": ["prompt"],
        },
    },
    {
        "name": "test_elicitation",
        "description": "Asks the user for a username and e-mail address (elicitation/create)",
        "inputSchema": {
            "type": "object",
            "properties": {"message": {"type": "string", "description": "The message to show the user"}},
            "required": ["message"],
        },
    },
    {
        "name": "test_elicitation_sep1034_defaults",
        "description": "Elicitation whose schema has defaults for every primitive type (SEP-1034)",
        "inputSchema": NO_ARGS,
    },
    {
        "name": "test_elicitation_sep1330_enums",
        "description": "Elicitation whose schema has all five enum variants (SEP-1330)",
        "inputSchema": NO_ARGS,
    },
    {
        "name": "json_schema_2020_12_tool",
        "description": "Tool with JSON Schema 2020-12 features",
        "inputSchema": JSON_SCHEMA_2020_12,
    },
]

# Tools of the suite's 2026-07-28 scenarios; they ask the client in either era's way (module doc).
STATELESS_TOOLS = {
    "test_missing_capability": "Asks the client for sampling; fails without it",
    "test_streaming_elicitation": "Reports progress, then asks the user to confirm (elicitation)",
    "test_logging_tool": "Sends an info log message, then answers",
    "test_trigger_tool_change": "Adds or removes test_dynamic_tool, and says the tool list changed",
    "test_trigger_prompt_change": "Adds or removes test_dynamic_prompt, and says the prompt list changed",
    "test_input_required_result_elicitation": "Asks the user's name (elicitation)",
    "test_input_required_result_sampling": "Asks the client's LLM a question (sampling)",
    "test_input_required_result_list_roots": "Asks the client for its roots",
    "test_input_required_result_request_state": "Asks the user to confirm, then answers state-ok",
    "test_input_required_result_multiple_inputs": "Asks for elicitation, sampling and roots at once",
    "test_input_required_result_multi_round": "Asks the user twice, one question after the other",
    "test_input_required_result_tampered_state": "Asks the user to confirm",
    "test_input_required_result_capabilities": "Asks by elicitation, or by sampling when elicitation fails",
    "test_listen_streams": "Says how many subscriptions/listen streams are open",
    "test_touch_watched": "Says that test://watched-resource changed, to those subscribed to it",
    "test_watchers": "Says how many open subscriptions/listen streams ask for test://watched-resource",
}
# Tools that end their own streams early (2025-11-25 polling); with `--resumable` the client
# resumes them with GET and Last-Event-ID, else they only answer.
RESUMABLE_TOOLS = {
    "test_resumed_answer": "Ends its answer stream, then answers on the resumed stream",
    "test_end_message_stream": "Ends the session's GET stream of server messages",
    "test_resumptions": "Says how many requests resumed a stream with Last-Event-ID",
}
TOOLS += [{"name": n, "description": d, "inputSchema": NO_ARGS} for n, d in STATELESS_TOOLS.items()]
TOOLS += [{"name": n, "description": d, "inputSchema": NO_ARGS} for n, d in RESUMABLE_TOOLS.items()]
TOOLS.append(
    {
        "name": "test_header_param",
        "description": "Echoes its region, which 2026-07-28 clients also send as the Mcp-Param-Region header",
        "inputSchema": {
            "type": "object",
            "properties": {"region": {"type": "string", "x-mcp-header": "Region"}},
            "required": ["region"],
        },
    }
)
DYNAMIC_TOOL = {"name": "test_dynamic_tool", "description": "Listed after test_trigger_tool_change", "inputSchema": NO_ARGS}
DYNAMIC_PROMPT = {"name": "test_dynamic_prompt", "description": "Listed after test_trigger_prompt_change"}
dynamic = {"tool": False, "prompt": False}
# Where list changes go for stateless clients' subscriptions/listen streams.
EVENTS = InMemorySubscriptionBus()
LISTEN = ListenHandler(EVENTS)
# The resources each open listen stream asks for, by its request id.
WATCHING: dict[Any, list[str]] = {}


async def listen(ctx: Any, params: Any) -> Any:
    WATCHING[ctx.request_id] = [str(u) for u in params.notifications.resource_subscriptions or []]
    try:
        return await LISTEN(ctx, params)
    finally:
        WATCHING.pop(ctx.request_id, None)

TOOL_NAMES = {t["name"] for t in TOOLS}

ELICITATION_USER_SCHEMA = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}

ELICITATION_SEP1034_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Your name", "default": "John Doe"},
        "age": {"type": "integer", "description": "Your age", "default": 30},
        "score": {"type": "number", "description": "Your score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "Account status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verified account", "default": True},
    },
}

ELICITATION_SEP1330_SCHEMA = {
    "type": "object",
    "properties": {
        "untitledSingle": {
            "type": "string",
            "description": "Untitled single-select",
            "enum": ["option1", "option2", "option3"],
        },
        "titledSingle": {
            "type": "string",
            "description": "Titled single-select",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "description": "Legacy titled enum (enumNames, deprecated)",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "description": "Untitled multi-select",
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "description": "Titled multi-select",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
}

# --------------------------------------------------------------------------------------
# Logging level (logging/setLevel), tracked per connection.

LOG_LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
_default_log_level = "debug"


def _connection_state(ctx: Any) -> dict[str, Any] | None:
    connection = getattr(ctx.session, "_connection", None)
    state = getattr(connection, "state", None)
    return state if isinstance(state, dict) else None


def _log_level(ctx: Any) -> str:
    state = _connection_state(ctx)
    if state is not None:
        return state.get("fixture_log_level", _default_log_level)
    return _default_log_level


async def _log(ctx: Any, level: str, message: str) -> None:
    if LOG_LEVELS.index(level) < LOG_LEVELS.index(_log_level(ctx)):
        return
    # related_request_id routes the notification onto the tools/call POST's SSE stream.
    await ctx.session.send_log_message(level, message, logger="fixture", related_request_id=ctx.request_id)


async def on_set_logging_level(ctx: Any, params: types.SetLevelRequestParams) -> dict[str, Any]:
    global _default_log_level
    state = _connection_state(ctx)
    if state is not None:
        state["fixture_log_level"] = params.level
    else:
        _default_log_level = params.level
    return {}


# --------------------------------------------------------------------------------------
# Tool calls


async def on_list_tools(ctx: Any, params: Any) -> dict[str, Any]:
    return {"tools": TOOLS + ([DYNAMIC_TOOL] if dynamic["tool"] else [])}


def _client_has(ctx: Any, capability: str) -> bool:
    caps = ctx.session.client_capabilities
    return caps is not None and getattr(caps, capability, None) is not None


def _dump(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(by_alias=True, mode="json", exclude_none=True)
    return value


class InputRequired(Exception):
    """A stateless request needs the client's input: the answer is an input request."""

    def __init__(self, requests: dict[str, Any], state: dict[str, Any] | None = None) -> None:
        super().__init__("input required")
        self.requests = requests
        self.state = state


STATE_KEY = os.urandom(32)


def _seal(state: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(state, sort_keys=True).encode()).decode()
    mac = hmac.new(STATE_KEY, body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def _unseal(token: Any) -> dict[str, Any]:
    body, _, mac = str(token).rpartition(".")
    good = hmac.new(STATE_KEY, body.encode(), hashlib.sha256).hexdigest()
    if not body or not hmac.compare_digest(mac, good):
        raise MCPError(code=INVALID_PARAMS, message="requestState failed verification")
    return json.loads(base64.urlsafe_b64decode(body.encode()))


def _stateless(ctx: Any) -> bool:
    return str(getattr(ctx, "protocol_version", "")) >= "2026-07-28"


def _replies(ctx: Any) -> dict[str, Any]:
    params = getattr(ctx, "params", None) or {}
    replies = params.get("inputResponses") or {}
    if not isinstance(replies, dict):
        raise MCPError(code=INVALID_PARAMS, message="inputResponses must be an object")
    return replies


def _state(ctx: Any) -> dict[str, Any] | None:
    params = getattr(ctx, "params", None) or {}
    token = params.get("requestState")
    return None if token is None else _unseal(token)


def _form(message: str, schema: dict[str, Any]) -> dict[str, Any]:
    """An input request for a form (elicitation)."""
    return {"method": "elicitation/create", "params": {"mode": "form", "message": message, "requestedSchema": schema}}


def _reply(ctx: Any, key: str, request: dict[str, Any]) -> dict[str, Any]:
    """The client's reply under `key`, or the input `request` for it."""
    reply = _replies(ctx).get(key)
    if reply is None:
        raise InputRequired({key: request})
    if not isinstance(reply, dict):
        raise MCPError(code=INVALID_PARAMS, message=f"inputResponses.{key} must be an object")
    return reply


def _client_caps(ctx: Any) -> dict[str, Any]:
    meta = getattr(ctx, "meta", None)
    caps = getattr(meta, "client_capabilities", None) if meta is not None else None
    if caps is None and isinstance(meta, dict):
        caps = meta.get("io.modelcontextprotocol/clientCapabilities")
    if caps is None:
        params = getattr(ctx, "params", None) or {}
        caps = (params.get("_meta") or {}).get("io.modelcontextprotocol/clientCapabilities")
    return _dump(caps) or {}


async def _elicit(ctx: Any, message: str, schema: dict[str, Any], key: str = "user_name") -> tuple[str, Any]:
    if _stateless(ctx):
        reply = _reply(ctx, key, _form(message, schema))
        return reply.get("action", "accept"), reply.get("content")
    result = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
    return result.action, _dump(result.content)


async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> dict[str, Any]:
    name = params.name
    args: dict[str, Any] = dict(params.arguments or {})

    if name == "test_simple_text":
        return tool_result(text("This is a simple text response for testing."))

    if name == "test_image_content":
        return tool_result(image())

    if name == "test_audio_content":
        return tool_result({"type": "audio", "data": WAV_B64, "mimeType": "audio/wav"})

    if name == "test_embedded_resource":
        return tool_result(
            {
                "type": "resource",
                "resource": {
                    "uri": "test://embedded-resource",
                    "mimeType": "text/plain",
                    "text": "This is an embedded resource content.",
                },
            }
        )

    if name == "test_multiple_content_types":
        return tool_result(
            text("Multiple content types test:"),
            image(),
            {
                "type": "resource",
                "resource": {
                    "uri": "test://mixed-content-resource",
                    "mimeType": "application/json",
                    "text": json.dumps({"test": "data", "value": 123}, separators=(",", ":")),
                },
            },
        )

    if name == "test_tool_with_logging":
        await _log(ctx, "info", "Tool execution started")
        await anyio.sleep(0.05)
        await _log(ctx, "info", "Tool processing data")
        await anyio.sleep(0.05)
        await _log(ctx, "info", "Tool execution completed")
        return tool_result(text("Tool with logging executed successfully"))

    if name == "test_tool_with_progress":
        # report_progress is a no-op unless the request's _meta carried a progressToken.
        await ctx.session.report_progress(0, 100, "Starting")
        await anyio.sleep(0.05)
        await ctx.session.report_progress(50, 100, "Halfway")
        await anyio.sleep(0.05)
        await ctx.session.report_progress(100, 100, "Done")
        return tool_result(text("Tool with progress executed successfully"))

    if name == "test_error_handling":
        return tool_result(text("This tool intentionally returns an error for testing"), is_error=True)

    if name == "test_sampling":
        prompt = args.get("prompt")
        if not isinstance(prompt, str):
            return tool_result(text("Missing required string argument 'prompt'"), is_error=True)
        if not _stateless(ctx) and not _client_has(ctx, "sampling"):
            return tool_result(text("Client does not support sampling"), is_error=True)
        return tool_result(text(f"LLM response: {await _sample(ctx, prompt, key='sampling')}"))

    if name == "test_elicitation":
        message = args.get("message")
        if not isinstance(message, str):
            return tool_result(text("Missing required string argument 'message'"), is_error=True)
        if not _stateless(ctx) and not _client_has(ctx, "elicitation"):
            return tool_result(text("Client does not support elicitation"), is_error=True)
        action, content = await _elicit(ctx, message, ELICITATION_USER_SCHEMA)
        return tool_result(text(f"User response: action={action}, content={json.dumps(content)}"))

    if name in ("test_elicitation_sep1034_defaults", "test_elicitation_sep1330_enums"):
        if not _stateless(ctx) and not _client_has(ctx, "elicitation"):
            return tool_result(text("Client does not support elicitation"), is_error=True)
        if name == "test_elicitation_sep1034_defaults":
            action, content = await _elicit(
                ctx, "Please review and update the form fields with defaults", ELICITATION_SEP1034_SCHEMA
            )
        else:
            action, content = await _elicit(ctx, "Please select options from the enum fields", ELICITATION_SEP1330_SCHEMA)
        return tool_result(text(f"Elicitation completed: action={action}, content={json.dumps(content)}"))

    if name == "json_schema_2020_12_tool":
        return tool_result(text(f"Received arguments: {json.dumps(args, sort_keys=True)}"))

    if name == "test_header_param":
        return tool_result(text(f"Region: {args.get('region')}"))

    if name in STATELESS_TOOLS:
        return await stateless_tool(ctx, name)

    if name == "test_resumed_answer":
        if ctx.close_sse_stream is not None:
            await ctx.close_sse_stream()
            await anyio.sleep(0.3)
        return tool_result(text("Answered after the stream ended"))

    if name == "test_resumptions":
        return tool_result(text(str(RESUMED["count"])))

    if name == "test_end_message_stream":
        if ctx.close_standalone_sse_stream is not None:
            await ctx.close_standalone_sse_stream()
        return tool_result(text("Ended"))

    raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {name}", data={"name": name})


CONFIRM_SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


async def _sample(ctx: Any, question: str, key: str = "capital_question") -> str:
    if _stateless(ctx):
        if "sampling" not in _client_caps(ctx):
            raise MissingCapability("sampling")
        message = {"role": "user", "content": {"type": "text", "text": question}}
        reply = _reply(ctx, key, {"method": "sampling/createMessage", "params": {"messages": [message], "maxTokens": 100}})
        content = reply.get("content") or {}
        if isinstance(content, list):
            content = content[0] if content else {}
        return content.get("text", "")
    result = await ctx.session.create_message(
        messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=question))],
        max_tokens=100,
        related_request_id=ctx.request_id,
    )
    content = result.content[0] if isinstance(result.content, list) else result.content
    return getattr(content, "text", "") or ""


class MissingCapability(Exception):
    """A stateless request needs a client capability that its `_meta` does not declare."""


async def _roots(ctx: Any, key: str = "client_roots") -> list[Any]:
    if _stateless(ctx):
        return _reply(ctx, key, {"method": "roots/list", "params": {}}).get("roots", [])
    return list((await ctx.session.list_roots()).roots)


async def stateless_tool(ctx: Any, name: str) -> dict[str, Any]:
    if name == "test_missing_capability":
        return tool_result(text(f"Success: {await _sample(ctx, 'Say yes')}"))
    if name == "test_listen_streams":
        return tool_result(text(str(len(LISTEN._streams))))
    if name == "test_watchers":
        return tool_result(text(str(sum(WATCHED_URI in uris for uris in WATCHING.values()))))
    if name == "test_touch_watched":
        if _stateless(ctx):
            await EVENTS.publish(ResourceUpdated(uri=WATCHED_URI))
        elif WATCHED_URI in _subscriptions(ctx):
            await ctx.session.send_resource_updated(WATCHED_URI)
        return tool_result(text("Touched"))
    if name == "test_streaming_elicitation":
        await ctx.session.report_progress(50, 100, "Halfway")
        action, _ = await _elicit(ctx, "Continue?", CONFIRM_SCHEMA)
        return tool_result(text(f"Streaming complete: {action}"))
    if name == "test_logging_tool":
        await ctx.session.send_log_message("info", "Diagnostic trace", logger="fixture", related_request_id=ctx.request_id)
        return tool_result(text("Logging evaluated"))
    if name in ("test_trigger_tool_change", "test_trigger_prompt_change"):
        kind = "tool" if name == "test_trigger_tool_change" else "prompt"
        dynamic[kind] = not dynamic[kind]
        if _stateless(ctx):
            await EVENTS.publish(ToolsListChanged() if kind == "tool" else PromptsListChanged())
        elif kind == "tool":
            await ctx.session.send_tool_list_changed()
        else:
            await ctx.session.send_prompt_list_changed()
        return tool_result(text("Mutation triggered"))
    if name == "test_input_required_result_elicitation":
        _, content = await _elicit(ctx, "What is your name?", NAME_SCHEMA)
        return tool_result(text(f"Hello, {(content or {}).get('name', 'stranger')}!"))
    if name == "test_input_required_result_sampling":
        return tool_result(text(f"Sampling result: {await _sample(ctx, 'What is the capital of France?')}"))
    if name == "test_input_required_result_list_roots":
        roots = await _roots(ctx)
        return tool_result(text(f"Found {len(roots)} root(s)"))
    if name == "test_input_required_result_request_state":
        if _stateless(ctx) and _state(ctx) is None:
            asked = {"confirm": _form("Confirm?", CONFIRM_SCHEMA)}
            raise InputRequired(asked, {"kind": "request-state"})
        _, content = await _elicit(ctx, "Confirm?", CONFIRM_SCHEMA, key="confirm")
        return tool_result(text("state-ok" if (content or {}).get("ok") is True else "state-not-confirmed"))
    if name == "test_input_required_result_multiple_inputs" and _stateless(ctx):
        replies = _replies(ctx)
        message = {"role": "user", "content": {"type": "text", "text": "What is the capital of France?"}}
        wanted = {
            "user_name": _form("What is your name?", NAME_SCHEMA),
            "capital_question": {"method": "sampling/createMessage", "params": {"messages": [message], "maxTokens": 100}},
            "client_roots": {"method": "roots/list", "params": {}},
        }
        missing = {k: v for k, v in wanted.items() if not isinstance(replies.get(k), dict)}
        if missing:
            raise InputRequired(missing, {"kind": "multiple"})
        return tool_result(text(f"All inputs received: {json.dumps(sorted(replies), sort_keys=True)}"))
    if name == "test_input_required_result_multiple_inputs":
        answers: dict[str, Any] = {}

        async def ask_name() -> None:
            answers["name"] = (await _elicit(ctx, "What is your name?", NAME_SCHEMA))[1]

        async def ask_llm() -> None:
            answers["llm"] = await _sample(ctx, "What is the capital of France?")

        async def ask_roots() -> None:
            answers["roots"] = len(await _roots(ctx))

        async with anyio.create_task_group() as tg:
            for ask in (ask_name, ask_llm, ask_roots):
                tg.start_soon(ask)
        return tool_result(text(f"All inputs received: {json.dumps(answers, sort_keys=True)}"))
    if name == "test_input_required_result_multi_round":
        if _stateless(ctx):
            state = _state(ctx) or {"round": 1}
            replies = _replies(ctx)
            if state["round"] == 1 and isinstance(replies.get("step1"), dict):
                state = {"round": 2}
            elif state["round"] == 2 and isinstance(replies.get("step2"), dict):
                return tool_result(text("Multi-round complete"))
            key = f"step{state['round']}"
            asked = {key: _form(f"Step {state['round']}?", CONFIRM_SCHEMA)}
            raise InputRequired(asked, state)
        first = (await _elicit(ctx, "Step 1: your name?", NAME_SCHEMA))[1]
        second = (await _elicit(ctx, "Step 2: confirm?", CONFIRM_SCHEMA))[1]
        return tool_result(text(f"Multi-round complete: {json.dumps([first, second])}"))
    if name == "test_input_required_result_tampered_state":
        if _stateless(ctx) and _state(ctx) is None:
            asked = {"confirm": _form("Confirm?", CONFIRM_SCHEMA)}
            raise InputRequired(asked, {"kind": "tampered"})
        action, _ = await _elicit(ctx, "Confirm?", CONFIRM_SCHEMA, key="confirm")
        return tool_result(text(f"Confirmed: {action}"))
    # test_input_required_result_capabilities: elicitation if the client takes it, else sampling.
    if _stateless(ctx):
        if "elicitation" in _client_caps(ctx):
            action, _ = await _elicit(ctx, "Confirm?", CONFIRM_SCHEMA, key="confirm")
            return tool_result(text(f"Elicited: {action}"))
        return tool_result(text(f"Sampled: {await _sample(ctx, 'Confirm?', key='confirm')}"))
    try:
        action, _ = await _elicit(ctx, "Confirm?", CONFIRM_SCHEMA)
        return tool_result(text(f"Elicited: {action}"))
    except MCPError:
        return tool_result(text(f"Sampled: {await _sample(ctx, 'Confirm?')}"))


# --------------------------------------------------------------------------------------
# Resources

STATIC_TEXT = "This is the content of the static text resource."
WATCHED_TEXT = "This is a watched resource; subscribe to it for updates."
WATCHED_URI = "test://watched-resource"
TEMPLATE = "test://template/{id}/data"
TEMPLATE_PREFIX, TEMPLATE_SUFFIX = "test://template/", "/data"

RESOURCES = [
    {
        "uri": "test://static-text",
        "name": "static-text",
        "description": "A static text resource",
        "mimeType": "text/plain",
    },
    {
        "uri": "test://static-binary",
        "name": "static-binary",
        "description": "A static binary resource (1x1 PNG)",
        "mimeType": "image/png",
    },
    {
        "uri": "test://watched-resource",
        "name": "watched-resource",
        "description": "A resource that can be subscribed to",
        "mimeType": "text/plain",
    },
]


async def on_list_resources(ctx: Any, params: Any) -> dict[str, Any]:
    return {"resources": RESOURCES}


async def on_list_resource_templates(ctx: Any, params: Any) -> dict[str, Any]:
    return {
        "resourceTemplates": [
            {
                "uriTemplate": TEMPLATE,
                "name": "template-data",
                "description": "Data for the given id",
                "mimeType": "application/json",
            }
        ]
    }


def _template_id(uri: str) -> str | None:
    if uri.startswith(TEMPLATE_PREFIX) and uri.endswith(TEMPLATE_SUFFIX):
        value = uri[len(TEMPLATE_PREFIX) : -len(TEMPLATE_SUFFIX)]
        if value and "/" not in value:
            return value
    return None


def _not_found(uri: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message="Resource not found", data={"uri": uri})


async def on_read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> dict[str, Any]:
    uri = str(params.uri)
    if uri == "test://static-text":
        contents = {"uri": uri, "mimeType": "text/plain", "text": STATIC_TEXT}
    elif uri == "test://static-binary":
        contents = {"uri": uri, "mimeType": "image/png", "blob": PNG_B64}
    elif uri == "test://watched-resource":
        contents = {"uri": uri, "mimeType": "text/plain", "text": WATCHED_TEXT}
    elif (item_id := _template_id(uri)) is not None:
        body = {"id": item_id, "templateTest": True, "data": f"Data for ID: {item_id}"}
        contents = {"uri": uri, "mimeType": "application/json", "text": json.dumps(body, separators=(",", ":"))}
    else:
        raise _not_found(uri)
    return {"contents": [contents]}


def _subscriptions(ctx: Any) -> set[str]:
    state = _connection_state(ctx)
    if state is None:
        return set()
    return state.setdefault("fixture_subscriptions", set())


async def on_subscribe(ctx: Any, params: types.SubscribeRequestParams) -> dict[str, Any]:
    uri = str(params.uri)
    if uri not in {r["uri"] for r in RESOURCES} and _template_id(uri) is None:
        raise _not_found(uri)
    _subscriptions(ctx).add(uri)
    return {}


async def on_unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> dict[str, Any]:
    _subscriptions(ctx).discard(str(params.uri))
    return {}


# --------------------------------------------------------------------------------------
# Prompts

PROMPTS = [
    {"name": "test_simple_prompt", "description": "A simple prompt without arguments"},
    {
        "name": "test_prompt_with_arguments",
        "description": "A prompt with two required arguments",
        "arguments": [
            {"name": "arg1", "description": "First test argument", "required": True},
            {"name": "arg2", "description": "Second test argument", "required": True},
        ],
    },
    {
        "name": "test_prompt_with_embedded_resource",
        "description": "A prompt that embeds a resource",
        "arguments": [{"name": "resourceUri", "description": "URI of the resource to embed", "required": True}],
    },
    {"name": "test_prompt_with_image", "description": "A prompt with image content"},
    {"name": "test_input_required_result_prompt", "description": "Asks the user's name (elicitation), then greets"},
]
PROMPTS_BY_NAME = {p["name"]: p for p in PROMPTS}


async def on_list_prompts(ctx: Any, params: Any) -> dict[str, Any]:
    return {"prompts": PROMPTS + ([DYNAMIC_PROMPT] if dynamic["prompt"] else [])}


def _user(content: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": content}


async def on_get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> dict[str, Any]:
    name = params.name
    args = dict(params.arguments or {})
    prompt = PROMPTS_BY_NAME.get(name)
    if prompt is None:
        raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {name}", data={"name": name})
    missing = [a["name"] for a in prompt.get("arguments", []) if a.get("required") and a["name"] not in args]
    if missing:
        raise MCPError(code=INVALID_PARAMS, message=f"Missing required arguments: {', '.join(missing)}")

    if name == "test_simple_prompt":
        messages = [_user(text("This is a simple prompt for testing."))]
    elif name == "test_prompt_with_arguments":
        messages = [_user(text(f"Prompt with arguments: arg1='{args['arg1']}', arg2='{args['arg2']}'"))]
    elif name == "test_input_required_result_prompt":
        _, content = await _elicit(ctx, "What is your name?", NAME_SCHEMA)
        messages = [_user(text(f"Greet {(content or {}).get('name', 'the user')} warmly."))]
    elif name == "test_prompt_with_embedded_resource":
        messages = [
            _user(
                {
                    "type": "resource",
                    "resource": {
                        "uri": args["resourceUri"],
                        "mimeType": "text/plain",
                        "text": "Embedded resource content for testing.",
                    },
                }
            ),
            _user(text("Please process the embedded resource above.")),
        ]
    else:  # test_prompt_with_image
        messages = [_user(image()), _user(text("Please analyze the image above."))]
    return {"description": prompt["description"], "messages": messages}


# --------------------------------------------------------------------------------------
# Completion

COMPLETIONS = {
    ("ref/prompt", "test_prompt_with_arguments", "arg1"): ["paris", "park", "party", "test", "testing", "tester"],
    ("ref/prompt", "test_prompt_with_arguments", "arg2"): ["world", "wonder", "test-value"],
    ("ref/prompt", "test_prompt_with_embedded_resource", "resourceUri"): [r["uri"] for r in RESOURCES],
    ("ref/resource", TEMPLATE, "id"): ["123", "456", "789"],
}


async def on_completion(ctx: Any, params: types.CompleteRequestParams) -> dict[str, Any]:
    ref = params.ref
    ref_type = getattr(ref, "type", None)
    key_name = getattr(ref, "name", None) if ref_type == "ref/prompt" else getattr(ref, "uri", None)
    candidates = COMPLETIONS.get((ref_type, key_name, params.argument.name), [])
    prefix = params.argument.value or ""
    values = [c for c in candidates if c.startswith(prefix)]
    return {"completion": {"values": values[:100], "total": len(values), "hasMore": len(values) > 100}}


# --------------------------------------------------------------------------------------
# Server assembly and transports


def answers(handler: Any, cacheable: bool = False) -> Any:
    """`handler`, its answers marked complete (with caching hints when `cacheable`), its input
    requests and missing capabilities turned into the results and errors of 2026-07-28."""

    async def wrapped(ctx: Any, params: Any) -> dict[str, Any]:
        try:
            result = await handler(ctx, params)
        except InputRequired as need:
            answer: dict[str, Any] = {"resultType": "input_required", "inputRequests": need.requests}
            if need.state is not None:
                answer["requestState"] = _seal(need.state)
            return answer
        except MissingCapability as missing:
            raise MCPError(
                code=-32021,
                message=f"this tool needs the client capability {missing.args[0]}",
                data={"requiredCapabilities": {missing.args[0]: {}}},
            ) from None
        if isinstance(result, dict):
            result.setdefault("resultType", "complete")
            if cacheable:
                result.setdefault("ttlMs", 0)
                result.setdefault("cacheScope", "public")
        return result

    return wrapped


def build_server() -> Server:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Server(
            "mcpgate-conformance-fixture",
            version="1.0.0",
            on_list_tools=answers(on_list_tools, cacheable=True),
            on_call_tool=answers(on_call_tool),
            on_list_resources=answers(on_list_resources, cacheable=True),
            on_list_resource_templates=answers(on_list_resource_templates, cacheable=True),
            on_read_resource=answers(on_read_resource, cacheable=True),
            on_subscribe_resource=on_subscribe,
            on_unsubscribe_resource=on_unsubscribe,
            on_list_prompts=answers(on_list_prompts, cacheable=True),
            on_get_prompt=answers(on_get_prompt),
            on_completion=answers(on_completion),
            on_set_logging_level=on_set_logging_level,
            on_subscriptions_listen=listen,
        )


def loopback_only() -> TransportSecuritySettings:
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[h for host in hosts for h in (host, f"{host}:*")],
        allowed_origins=[
            o for scheme in ("http", "https") for host in hosts for o in (f"{scheme}://{host}", f"{scheme}://{host}:*")
        ],
    )


async def serve_stdio() -> None:
    from mcp.server.stdio import stdio_server

    server = build_server()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


# `GET` requests that resumed a stream (with `Last-Event-ID`).
RESUMED = {"count": 0}


def counting_resumptions(app: Any) -> Any:
    """`app`, counting the requests that resume a stream."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and any(k.lower() == b"last-event-id" for k, _ in scope["headers"]):
            RESUMED["count"] += 1
        return await app(scope, receive, send)

    return wrapped


def stateless_only(app: Any) -> Any:
    """`app`, refusing what a server of 2026-07-28 only refuses: `GET` and `DELETE` (405), and a
    `POST` without that revision's `MCP-Protocol-Version` header, `initialize` among them (400,
    `-32022`, naming the revision it speaks)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/mcp"):
            return await app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        version = headers.get("mcp-protocol-version")
        if scope["method"] != "POST":
            status, error = 405, {"code": -32600, "message": "this server speaks 2026-07-28 only: POST requests"}
        elif version != "2026-07-28":
            status = 400
            error = {"code": -32022, "message": "Unsupported protocol version",
                     "data": {"supported": ["2026-07-28"], "requested": version}}
        else:
            return await app(scope, receive, send)
        body = json.dumps({"jsonrpc": "2.0", "error": error}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return wrapped


class MemoryEvents(EventStore):
    """Every event of every stream, so that a stream ended early can be resumed."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []

    async def store_event(self, stream_id: str, message: Any) -> str:
        event_id = str(len(self.events) + 1)
        self.events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(self, last_event_id: str, send_callback: Any) -> str | None:
        index = next((i for i, e in enumerate(self.events) if e[0] == last_event_id), None)
        if index is None:
            return None
        stream_id = self.events[index][1]
        for event_id, stream, message in self.events[index + 1 :]:
            if stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


async def serve_http(port: int, only_stateless: bool = False, resumable: bool = False) -> None:
    import uvicorn

    server = build_server()
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=loopback_only(),
        host="127.0.0.1",
        event_store=MemoryEvents() if resumable else None,
        retry_interval=100 if resumable else None,
    )
    if only_stateless:
        app = stateless_only(app)
    if resumable:
        app = counting_resumptions(app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    bound_port = sock.getsockname()[1]

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    http = uvicorn.Server(config)

    async def announce() -> None:
        while not http.started:
            if http.should_exit:
                return
            await anyio.sleep(0.01)
        sys.stdout.write(f"listening on 127.0.0.1:{bound_port}\n")
        sys.stdout.flush()

    async with anyio.create_task_group() as tg:
        tg.start_soon(announce)
        await http.serve(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="transport", required=True)
    http = sub.add_parser("streamable-http", help="serve http://127.0.0.1:PORT/mcp")
    http.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free port)")
    http.add_argument("--only-stateless", action="store_true", help="refuse sessions: speak 2026-07-28 only")
    http.add_argument("--resumable", action="store_true", help="keep events, so that streams ended early resume")
    sub.add_parser("stdio", help="serve on stdin/stdout")
    args = parser.parse_args()
    try:
        if args.transport == "stdio":
            anyio.run(serve_stdio)
        else:
            anyio.run(serve_http, args.port, args.only_stateless, args.resumable)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
