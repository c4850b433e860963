"""DiaChestXR's web app (Gradio 6): chest X-ray screening and diagnosis with Grad-CAM.
Research demo, not for clinical use.

    from diachestxr.web import build_demo, launch
    launch(build_demo())       # what app.py (a Hugging Face Space) and `diachestxr serve` do

Importing this package loads nothing: Gradio, torch and the models load in `build_demo()`.
Gradio is the `[app]` extra (`pip install "diachestxr[app]"`); without it `build_demo()`
raises MissingExtraError, which says so.

Layout: `demo` (the page, queue and launch options), `tabs` (one builder for both tabs and
the event chain they share), `screening` / `diagnosis` (what each task adds), `widgets` (the
components both use), `service` (the models and the API functions `/screen`, `/diagnose`),
`session` (a session's state and the result files), `binding` (the session cookie: a result
file is served only to the session that made it), `views` (pure functions: results and
model information to Markdown/HTML), `style.css`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:  # at run time gradio is imported by build_demo(), not here
    import gradio as gr

    from ..examples import Example
    from ..inference import Predictor

APP_EXTRA = 'pip install "diachestxr[app]"'
__all__ = ["APP_EXTRA", "MissingExtraError", "build_demo", "launch"]


class MissingExtraError(ImportError):
    """Gradio is not installed: the web app is the package's [app] extra."""


def require_gradio() -> None:
    """Import Gradio, or raise MissingExtraError naming the extra to install."""
    # No usage telemetry from a medical-imaging demo unless the deployer turns it on.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from .session import use_private_gradio_folder

    use_private_gradio_folder()  # before Gradio is imported: it reads the folder then
    try:
        import gradio  # noqa: F401
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in ("gradio", "gradio_client"):
            raise
        raise MissingExtraError(f"the web app needs gradio, which is not installed; "
                                f"install it with: {APP_EXTRA}") from None


def build_demo(predictors: Mapping[str, "Predictor"] | None = None,
               examples: Sequence["Example"] | None = None, *,
               weights_dir: str | os.PathLike | None = None) -> "gr.Blocks":
    """The web app as a gr.Blocks (queued, not launched). predictors: {task: Predictor}
    (None: load each task's model, from `weights_dir` or the usual order: local folder,
    Hub, bundled). examples: the sample images (None: diachestxr.examples.list_examples())."""
    from .. import profile

    with profile.timed("start-up"):  # DIACHESTXR_PROFILE=1: one line with each step's time
        with profile.step("import gradio"):
            require_gradio()
        with profile.step("import torch and the app"):
            from .demo import build_demo as build
        return build(predictors, examples, weights_dir=weights_dir)


def launch(demo: "gr.Blocks", host: str | None = None, port: int | None = None,
           share: bool = False) -> None:
    """Serve a demo from build_demo() with the app's options (theme, CSS, upload limit,
    sample-image folders); host and port default to GRADIO_SERVER_NAME and
    GRADIO_SERVER_PORT, else 127.0.0.1:7860. Blocks until stopped."""
    from .demo import launch as serve

    serve(demo, host=host, port=port, share=share)
