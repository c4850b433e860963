"""The app as an MCP server: Gradio's own (`launch(mcp_server=True)`, at
<url>/gradio_api/mcp/). The API's two named endpoints become the tools `screen` and `diagnose`,
described by the docstrings of Service.screen / Service.diagnose; the page's own events are
api_visibility="private" and stay out. An image reaches a tool as a base64 data: URL or an
http(s) URL the server downloads (Gradio refuses private addresses: 127.0.0.1, a LAN).

Two fixes to Gradio 6.31's MCP layer, applied by `enable()`:
- a call without a progress token (what most MCP clients send) to an event with several
  outputs failed ("pop index out of range"): Gradio put the client's tuple of outputs in a
  one-item list;
- an image sent as a data: URL was decoded into Gradio's folder and kept there until the
  server stopped (the app deletes only its own copy of an upload): it goes once answered.
"""

from __future__ import annotations

import logging
import os
import shutil
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger("diachestxr.web")

# the files decoded from data: URLs for the tool call running in this task
_decoded: ContextVar[tuple[str, ...]] = ContextVar("decoded", default=())


def enable() -> bool:
    """Whether to serve the MCP tools (if so, with the fixes above): yes unless
    GRADIO_MCP_SERVER=false, or the `mcp` package is missing (the page and the HTTP API are
    served anyway; a warning says why)."""
    if os.environ.get("GRADIO_MCP_SERVER", "true").lower() == "false":
        return False
    try:
        from gradio.mcp import GradioMCPServer
        import mcp  # noqa: F401
    except ImportError:
        log.warning('MCP server off: the `mcp` package is missing (pip install "diachestxr[app]")')
        return False
    _fix(GradioMCPServer)
    return True


def _fix(server: type) -> None:
    if getattr(server, "_diachestxr_fixed", False):
        return
    if not all(hasattr(server, name) for name in (
            "convert_strings_to_filedata", "_execute_tool_with_progress",
            "_execute_tool_without_progress")):  # another Gradio: its own code, unfixed
        log.warning("Gradio's MCP server has changed: serving it without this app's fixes")
        return
    from anyio.to_thread import run_sync

    convert, with_progress = server.convert_strings_to_filedata, server._execute_tool_with_progress

    def convert_strings_to_filedata(self, value: Any, filedata_positions: list) -> Any:
        converted = convert(self, value, filedata_positions)
        _decoded.set(tuple(_decoded_files(value, converted)))
        return converted

    async def execute_without_progress(self, job: Any) -> list[Any]:
        try:
            outputs = await run_sync(job.result)
        finally:
            _forget_decoded()
        # one output comes alone, several as a tuple: a list of outputs either way
        return list(outputs) if isinstance(outputs, tuple) else [outputs]

    async def execute_with_progress(self, job: Any, progress_token: str | int) -> Any:
        try:
            return await with_progress(self, job, progress_token)
        finally:
            _forget_decoded()

    server.convert_strings_to_filedata = convert_strings_to_filedata
    server._execute_tool_without_progress = execute_without_progress
    server._execute_tool_with_progress = execute_with_progress
    server._diachestxr_fixed = True


def _decoded_files(value: Any, converted: Any) -> Iterator[str]:
    """The files Gradio decoded from data: URLs in a tool's arguments: a data: string that
    became a FileData dict (an http(s) URL is downloaded by the app itself; a client's own
    dicts are not ours to delete)."""
    if isinstance(value, str):
        if value.startswith("data:") and isinstance(converted, dict) and "path" in converted:
            yield str(converted["path"])
    elif isinstance(value, dict) and isinstance(converted, dict):
        for key, item in value.items():
            yield from _decoded_files(item, converted.get(key))
    elif isinstance(value, list) and isinstance(converted, list):
        for item, done in zip(value, converted):
            yield from _decoded_files(item, done)


def _forget_decoded() -> None:
    """Delete this call's decoded files, each with the folder Gradio made for it (by then the
    loopback client has uploaded them to the app, which deletes its copy after answering)."""
    for path in _decoded.get():
        shutil.rmtree(Path(path).parent, ignore_errors=True)
    _decoded.set(())
