"""The demo: a page with the notice, one tab per task and the footer, queued, and how it is
launched (the same for `python app.py` and `diachestxr serve`)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Mapping, Sequence

import gradio as gr

from .. import __version__
from ..examples import Example, list_examples
from ..inference import Predictor
from ..io import MAX_FILE_BYTES, quiet_pydicom
from ..registry import TASKS
from . import views
from .batch import batch_tab
from .mcp_server import enable as enable_mcp
from .service import Service, load_predictors
from .tabs import task_tab

CSS_PATH = Path(__file__).with_name("style.css")
QUEUE_CONCURRENCY = 4  # model calls per event at once (torch runs them side by side)
QUEUE_MAX_SIZE = 64  # beyond this, new requests are told the queue is full instead of waiting
# Gradio's own copies of results (and any upload not deleted after its answer): files older
# than CACHE_TTL_S go, checked every CACHE_SWEEP_S; all of them when the server stops
CACHE_TTL_S, CACHE_SWEEP_S = 900, 300


def build_demo(predictors: Mapping[str, Predictor] | None = None,
               examples: Sequence[Example] | None = None, *,
               weights_dir: str | os.PathLike | None = None) -> gr.Blocks:
    """The web app. predictors: {task: Predictor} (None: load each task's model, from
    `weights_dir` or the usual order; a task without a checkpoint gets a tab that says why).
    examples: the sample images (None: diachestxr.examples.list_examples())."""
    errors: dict[str, str] = {}
    if predictors is None:
        predictors, errors = load_predictors(weights_dir=weights_dir)
    examples = list_examples() if examples is None else list(examples)
    service = Service(predictors, errors)
    with gr.Blocks(title="DiaChestXR: chest X-ray screening and diagnosis",
                   delete_cache=(CACHE_SWEEP_S, CACHE_TTL_S)) as demo:
        gr.Markdown("# DiaChestXR · chest X-ray screening and diagnosis with Grad-CAM")
        gr.Markdown(views.NOTICE, elem_id="notice")
        with gr.Tabs(overflow_behavior="wrap"):
            for task in TASKS:
                task_tab(task, service, examples)
            batch_tab(service)
        gr.Markdown(f"DiaChestXR {__version__} · {views.DISCLAIMER} · Use the API: `/screen` and "
                    "`/diagnose` (link at the bottom of the page).", elem_classes=["small"])
    # Gradio's cached copies of the sample images serve every visitor: never deleted after use
    service.shared_files = frozenset(str(p) for block in demo.blocks.values()
                                     for p in getattr(block, "keep_in_cache", ()))
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    # Gradio serves files only from the folders it is told of: the sample images' folders
    # (launch() passes them on; Gradio keeps the list on the Blocks under this name)
    demo.allowed_paths = sorted({str(e.path.parent) for e in examples})
    return demo


def theme() -> gr.themes.Base:
    return gr.themes.Soft(primary_hue="blue", font=["ui-sans-serif", "system-ui", "sans-serif"],
                          font_mono=["ui-monospace", "monospace"])  # no web-font download


def launch(demo: gr.Blocks, host: str | None = None, port: int | None = None,
           share: bool = False) -> None:
    """Serve `demo` (blocks until stopped). host and port default to GRADIO_SERVER_NAME and
    GRADIO_SERVER_PORT (Hugging Face Spaces sets them), else 127.0.0.1:7860.
    SIGTERM (`docker stop`, a Space restart) stops it as Ctrl-C does: Gradio shuts down and
    deletes its upload cache, and the results folder goes at exit (session.ResultFiles).
    The API functions are also MCP tools, at <url>/gradio_api/mcp/ (streamable HTTP; SSE at
    .../mcp/sse); GRADIO_MCP_SERVER=false turns that off (see mcp_server)."""
    quiet_pydicom()  # its log lines carry tag values: patient data in the server's log
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # -> KeyboardInterrupt
    demo.launch(server_name=host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=port or int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                share=share, max_file_size=MAX_FILE_BYTES,
                allowed_paths=list(demo.allowed_paths), theme=theme(), css_paths=[CSS_PATH],
                footer_links=["api", "gradio"],
                mcp_server=enable_mcp())
