"""DiaChestXR web app (a Hugging Face Space's entry; `python app.py` locally): chest X-ray
screening and diagnosis with Grad-CAM. Research demo, not for clinical use.

The app is `diachestxr.web` (an installed package serves the same with `diachestxr serve`).
It listens on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (default 127.0.0.1:7860; Spaces sets
them) and loads its models from DIACHESTXR_WEIGHTS_DIR, else the Hub (DIACHESTXR_HUB_REPO,
HF_HUB_OFFLINE), else the bundled checkpoints; DIACHESTXR_EXAMPLES_DIR holds the sample
images. API: `/screen` and `/diagnose`, e.g.
    Client(url).predict(handle_file("xray.png"), api_name="/screen")
"""

from __future__ import annotations

import logging

from diachestxr.web import build_demo, launch


def __getattr__(name: str):
    """`app.demo` (e.g. `gradio app.py`): built on first use, never at import."""
    if name == "demo":
        globals()["demo"] = demo = build_demo()
        return demo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    # before the models load, so where their weights came from is logged
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    demo = build_demo()
    launch(demo)
