"""The demo: a page with the notice, one tab per task and the footer, queued, and how it is
launched (the same for `python app.py` and `diachestxr serve`)."""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Mapping, Sequence

import gradio as gr
from starlette.middleware import Middleware

from .. import __version__, profile
from ..examples import Example, list_examples
from ..inference import Predictor
from ..io import MAX_FILE_BYTES, quiet_pydicom
from ..registry import TASKS
from . import views
from .batch import batch_tab
from .binding import SessionFiles
from .mcp_server import enable as enable_mcp
from .service import Service, load_predictors
from .settings import (CACHE_SWEEP_S, CACHE_TTL_S, QUEUE_CONCURRENCY, QUEUE_MAX_SIZE,
                       TORCH_THREADS)
from .tabs import task_tab

CSS_PATH = Path(__file__).with_name("style.css")
log = logging.getLogger("diachestxr.web")
def build_demo(predictors: Mapping[str, Predictor] | None = None,
               examples: Sequence[Example] | None = None, *,
               weights_dir: str | os.PathLike | None = None) -> gr.Blocks:
    """The web app. predictors: {task: Predictor} (None: load each task's model, from
    `weights_dir` or the usual order; a task without a checkpoint gets a tab that says why).
    examples: the sample images (None: diachestxr.examples.list_examples())."""
    errors: dict[str, str] = {}
    import torch

    torch.set_num_threads(TORCH_THREADS)  # the server's, not the library's (settings.py)
    if predictors is None:
        with profile.step("models"):
            predictors, errors = load_predictors(weights_dir=weights_dir)
    examples = list_examples() if examples is None else list(examples)
    service = Service(predictors, errors)
    with profile.step("page"), gr.Blocks(title="DiaChestXR: chest X-ray screening and diagnosis",
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
    demo.warm_up = functools.partial(warm_up, predictors, examples)  # launch() runs it
    # the session cookie, and result files served only to their session (launch() adds it)
    demo.app_middleware = [Middleware(SessionFiles, owner_of=service.files.owner)]
    return demo


def warm_up(predictors: Mapping[str, Predictor], examples: Sequence[Example]) -> threading.Thread:
    """Off the first visitor's path, once Gradio serves (while a browser loads the page):
    import pytorch-grad-cam (about 1 s here: it imports scikit-learn) and run each model
    once, maps included, on a sample image (first calls pay one-time costs). In a background
    thread; a failure only logs (the first real request then pays those costs itself).
    Started before the server instead, it held the server's start back (GIL: 7.05 against
    6.7 s, medians of 5 cold starts) and brought the first answer no sooner (8.1 s both)."""
    sample = next((e.path for e in examples), None)

    def run() -> None:
        with profile.timed("warm-up"):
            try:
                import pytorch_grad_cam  # noqa: F401

                for task, predictor in predictors.items() if sample else ():
                    predictor.predict([sample], task)
            except Exception:  # noqa: BLE001 -- a warm-up must never stop the server
                log.debug("warm-up failed", exc_info=True)

    thread = threading.Thread(target=run, name="diachestxr-warm-up", daemon=True)
    thread.start()
    return thread


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
    with profile.timed("launch"):
        demo.launch(server_name=host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                    server_port=port or int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                    share=share, max_file_size=MAX_FILE_BYTES,
                    allowed_paths=list(demo.allowed_paths), theme=theme(),
                    css_paths=[CSS_PATH], footer_links=["api", "gradio"],
                    mcp_server=enable_mcp(), prevent_thread_lock=True,
                    app_kwargs={"middleware": list(getattr(demo, "app_middleware", ()))})
    if warm := getattr(demo, "warm_up", None):
        warm()
    demo.block_thread()  # until Ctrl-C or SIGTERM
