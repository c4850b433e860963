"""The floor a Gradio app stands on: the same Gradio version, queue and launch as DiaChestXR's
app, one file in and a JSON result and an image out, and no work in between. Served on
GRADIO_SERVER_PORT by `benchmarks/app_latency.py --trivial`, which measures both apps in one
run and reports DiaChestXR's figures as ratios of this one's.

Its endpoints carry the app's names (/screen, /diagnose) so one client loop times both.
"""

from __future__ import annotations

import os

import gradio as gr

from diachestxr.web.settings import QUEUE_CONCURRENCY, QUEUE_MAX_SIZE


def answer(path: str) -> tuple[dict, str]:
    """A result dict and the upload itself as the image: what any app must at least return."""
    return {"label": "Normal", "model": {"arch": "none"}}, path


with gr.Blocks(title="trivial") as demo:
    image = gr.File(type="filepath")
    result, shown = gr.JSON(), gr.Image(type="filepath")
    for name in ("screen", "diagnose"):
        gr.Button(name).click(answer, inputs=image, outputs=[result, shown], api_name=name)
demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX_SIZE)

if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
