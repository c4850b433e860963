"""A session's state and the result files: what the server keeps between two events.

A session keeps its last result, every map as uint8 at STATE_MAP_SIDE (the maps come from a
7x7 or 13x13 grid: nothing is lost; 4 KB each) and the path of the radiograph's PNG, about
60 KB in memory rather than the 1-2 MB of the image and 224 px maps. A threshold, opacity or
label change redraws from it without the model. Every overlay, on the API path and on a
redraw alike, is drawn from these maps.

Result files (overlays, the radiograph, JSON) go to a temporary folder made on first use,
one sub-folder per file so a download keeps its name; folders older than RESULT_TTL_S are
removed as new ones are made, so a long-running server stays small.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np

RESULT_TTL_S = 3600
# A session's state is dropped this long after it was last written (Gradio restarts the
# clock at each write; a closed tab's state goes after an hour). A redraw whose radiograph
# file RESULT_TTL_S already removed raises ResultExpired.
STATE_TTL_S = 1800
STATE_MAP_SIDE = 64

SessionState = dict  # {"original": PNG path, "cams": {label: uint8 map}, "result": API dict}


class ResultExpired(Exception):
    """The result files of a session were removed (RESULT_TTL_S): upload the image again."""


class ResultFiles:
    """Fresh file paths for results, under one temporary folder made on first use."""

    def __init__(self, root: Path | None = None, ttl_s: float = RESULT_TTL_S) -> None:
        self._root = root
        self.ttl_s = ttl_s
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        with self._lock:  # requests run in threads: one folder, made once
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="diachestxr-results-"))
            self._root.mkdir(parents=True, exist_ok=True)
            return self._root

    def path(self, name: str) -> Path:
        """A new path named `name`, in a folder of its own; expired folders go first."""
        root, now = self.root, time.time()
        for old in root.iterdir():
            try:
                expired = now - old.stat().st_mtime > self.ttl_s
            except FileNotFoundError:  # another request removed it just now
                continue
            if expired:
                shutil.rmtree(old, ignore_errors=True)
        folder = root / uuid.uuid4().hex[:16]
        folder.mkdir()
        return folder / name

    def png(self, image: np.ndarray, name: str = "heatmap.png") -> str:
        """An image as a PNG file, encoded once, at a fast compression level."""
        from PIL import Image

        from ..registry import PNG_COMPRESS_LEVEL

        out = self.path(name)
        Image.fromarray(image).save(out, compress_level=PNG_COMPRESS_LEVEL)
        return str(out)

    def json(self, result: Mapping[str, Any]) -> str:
        """The downloadable result: <image stem>-<task>.json."""
        stem = Path(result.get("file") or "image").stem or "image"
        out = self.path(f"{stem}-{result['task']}.json")
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        return str(out)

    def label_json(self, value: Mapping[str, Any]) -> str:
        """A gr.Label value as the .json file gr.Label reads (its own format)."""
        out = self.path("label.json")
        out.write_text(json.dumps(value), encoding="utf-8")
        return str(out)


def new_state(prediction: Any, result: dict, files: ResultFiles) -> SessionState:
    """What a session keeps of a prediction (a Screening/DiagnosisResult with maps)."""
    cams = {label: cv2.resize(np.rint(np.clip(e.cam, 0.0, 1.0) * 255).astype(np.uint8),
                              (STATE_MAP_SIDE, STATE_MAP_SIDE), interpolation=cv2.INTER_AREA)
            for label, e in prediction.explanations.items()}
    return {"original": files.png(prediction.image, "radiograph.png"), "cams": cams,
            "result": result}


def empty_maps(state: SessionState) -> list[str]:
    """The labels whose map is empty (no region raised the score)."""
    return [label for label, cam in state["cams"].items() if not cam.any()]


def radiograph(state: SessionState) -> np.ndarray:
    """The session's radiograph, read back from its PNG."""
    path = state["original"]
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE) if Path(path).is_file() else None
    if image is None:
        raise ResultExpired("This result has expired; upload the image again.")
    return image


def draw(state: SessionState, label: str, opacity: float, files: ResultFiles,
         image: np.ndarray | None = None) -> str:
    """The overlay PNG of `label`'s map on the radiograph (`image`: the radiograph when the
    caller has it in memory, else it is read back from the session's PNG)."""
    from ..explain import overlay

    gray = radiograph(state) if image is None else image
    cam = state["cams"][label].astype(np.float32) / 255.0
    return files.png(overlay(gray, cam, float(opacity)))
