"""The app as an MCP server (Gradio's, at <url>/gradio_api/mcp/): the real `mcp` client
against `python app.py` (the server test_app_api.py uses, see conftest.app_url).

Plumbing, not accuracy: the tools are the two API functions, they answer as the API does,
and a file that is not an image gets a clear refusal, not a crash."""

from __future__ import annotations

import ast
import asyncio
import base64
import os
import tempfile
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from diachestxr import NIH_LABELS, SCREENING_CLASSES
from diachestxr.examples import read_manifest
from tests.conftest import ROOT

CALL_TIMEOUT_S = 60
RESEARCH_ONLY = "Research demo, not for clinical use"


def mcp_url(app_url: str) -> str:
    return app_url + "gradio_api/mcp/"


def with_session(url: str, work: Callable[[Any], Awaitable[Any]], transport: str = "http") -> Any:
    """Run `work(session)` in one MCP session over streamable HTTP (the URL Gradio prints)
    or SSE (<url>/sse)."""
    from mcp import ClientSession
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    async def main() -> Any:
        connect = streamable_http_client(url) if transport == "http" else sse_client(url + "sse")
        async with connect as (read, write, *_):
            async with ClientSession(read, write,
                                     read_timeout_seconds=timedelta(seconds=CALL_TIMEOUT_S)) as s:
                await s.initialize()
                return await work(s)

    return asyncio.run(asyncio.wait_for(main(), 2 * CALL_TIMEOUT_S))


def data_url(payload: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(payload).decode()


def unique(payload: bytes) -> bytes:
    """The bytes with a random tail (JPEG readers stop at the end-of-image marker): no other
    file on the machine has them, so any copy left behind can be found."""
    return payload + uuid.uuid4().hex.encode()


def copies_left(payload: bytes) -> list[Path]:
    """Files with exactly these bytes in the app servers' Gradio folders (private ones, or
    the deployer's GRADIO_TEMP_DIR)."""
    folders = list(Path(tempfile.gettempdir()).glob("diachestxr-gradio-*"))
    if os.environ.get("GRADIO_TEMP_DIR"):
        folders.append(Path(os.environ["GRADIO_TEMP_DIR"]))
    return [p for folder in folders for p in folder.rglob("*")
            if p.is_file() and p.stat().st_size == len(payload) and p.read_bytes() == payload]


def texts(result) -> list[str]:
    return [c.text for c in result.content if c.type == "text"]


def sample(task: str) -> Path:
    """The first sample image of `task` in examples/manifest.csv."""
    row = next(r for r in read_manifest(ROOT / "examples" / "manifest.csv") if r["task"] == task)
    return ROOT / "examples" / row["file"]


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_the_tools_are_the_two_api_functions_described_as_research_only(app_url, transport):
    tools = with_session(mcp_url(app_url), lambda s: s.list_tools(), transport).tools
    by_name = {t.name: t for t in tools}
    assert sorted(by_name) == ["diagnose", "screen"]  # none of the page's own events
    for tool in tools:
        text = tool.description
        assert text.startswith(RESEARCH_ONLY), text
        assert "frontal chest radiograph (PNG, JPEG or DICOM" in text
        assert "Returns (result, overlay" in text and "result_file" not in text  # what comes back
        assert tool.inputSchema["required"] == ["image"]
        assert tool.inputSchema["properties"]["image"]["type"] == "string"  # a URL
    assert "COVID-19 / Pneumonia / Normal" in by_name["screen"].description
    assert "14 NIH ChestX-ray14 findings" in by_name["diagnose"].description


def test_the_mcp_url_answers_a_browser_with_its_address(app_url):
    with urllib.request.urlopen(mcp_url(app_url), timeout=10) as r:
        assert r.status == 200 and mcp_url(app_url) in r.read().decode()


def test_screen_a_sample_image_as_the_api_does(app_url):
    """A call without a progress token, as most MCP clients make it (Gradio 6.31 failed those
    for a multi-output event, see diachestxr.web.mcp_server); the image as a data: URL, whose
    decoded copy is gone once answered, like the app's own copy of the upload."""
    from gradio_client import Client, handle_file

    image = sample("screening")
    payload = unique(image.read_bytes())
    result = with_session(mcp_url(app_url), lambda s: s.call_tool(
        "screen", {"image": data_url(payload, "image/jpeg")}))
    assert not result.isError, texts(result)
    answer = ast.literal_eval(texts(result)[0])  # Gradio sends a dict output as its repr
    assert answer["task"] == "screening" and answer["label"] in SCREENING_CLASSES
    assert list(answer["confidences"]) == list(SCREENING_CLASSES)
    assert sum(answer["confidences"].values()) == pytest.approx(1.0, abs=1e-4)
    assert answer["disclaimer"].startswith("Research demo")
    assert [c.mimeType for c in result.content if c.type == "image"] == ["image/jpeg"]  # heatmap
    assert not any(".json" in t for t in texts(result))  # no result file: the answer holds it
    assert not copies_left(payload)
    # the same answer as the HTTP API's for the same image
    api, *_ = Client(app_url, verbose=False).predict(handle_file(str(image)), api_name="/screen")
    assert answer["label"] == api["label"]
    assert answer["confidences"] == pytest.approx(api["confidences"], abs=1e-6)


def test_diagnose_with_progress(app_url):
    """A call with a progress token (Gradio's other path): the progress comes, then the answer."""
    progress = []

    async def call(session):
        async def report(done, total, message):
            progress.append(message)
        return await session.call_tool(
            "diagnose", {"image": data_url(sample("diagnosis").read_bytes(), "image/jpeg")},
            progress_callback=report)

    result = with_session(mcp_url(app_url), call)
    assert not result.isError, texts(result)
    answer = ast.literal_eval(texts(result)[0])
    assert answer["task"] == "diagnosis" and set(answer["probabilities"]) == set(NIH_LABELS)
    assert progress


def test_a_text_file_is_refused_and_the_server_keeps_serving(app_url):
    payload = unique(b"this is a text file, not an X-ray\n")

    async def calls(session):
        refused = await session.call_tool("screen", {"image": data_url(payload, "text/plain")})
        tools = await session.list_tools()
        return refused, tools

    refused, tools = with_session(mcp_url(app_url), calls)
    assert refused.isError
    message = " ".join(texts(refused))
    assert "not a recognised image" in message and "PNG or JPEG" in message and "DICOM" in message
    assert "Traceback" not in message
    assert len(tools.tools) == 2
    assert not copies_left(payload)
    # a new session: the server still answers
    again = with_session(mcp_url(app_url), lambda s: s.call_tool(
        "screen", {"image": data_url(sample("screening").read_bytes(), "image/jpeg")}))
    assert not again.isError, texts(again)


def test_mcp_is_off_when_asked_or_without_the_package(monkeypatch, caplog):
    """Without the `mcp` package the app still serves its page and API (and says why)."""
    import sys

    import gradio.mcp  # noqa: F401  (first imported with `mcp` there, as in the app)

    from diachestxr.web import mcp_server

    monkeypatch.setenv("GRADIO_MCP_SERVER", "false")
    assert mcp_server.enable() is False
    monkeypatch.delenv("GRADIO_MCP_SERVER")
    monkeypatch.setitem(sys.modules, "mcp", None)  # what importing a missing package meets
    assert mcp_server.enable() is False
    assert "mcp" in caplog.text and "diachestxr[app]" in caplog.text
