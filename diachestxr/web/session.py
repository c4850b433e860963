"""A session's state and the result files: what the server keeps between two events.

A session keeps its last result, every map as uint8 at STATE_MAP_SIDE (the maps come from a
7x7 or 13x13 grid: nothing is lost; 4 KB each) and the path of the radiograph's PNG, about
60 KB in memory rather than the 1-2 MB of the image and 224 px maps. The PNG is written when
the page first shows it (`original`): an API call's radiograph never reaches the disk. A
threshold, opacity or label change redraws from it without the model. Every overlay, on the
API path and on a redraw alike, is drawn from these maps.

Result files (overlays, the radiograph, JSON) go to a temporary folder made on first use
(its name holds the server's process id), named uniquely (`heatmap-<16 hex>.jpg`, in 256
buckets, so no directory holds more than a few hundred entries) and served only to the
session that made them (`binding`). What a patient's radiograph leaves behind is bounded:
- files older than RESULT_TTL_S are removed as new ones are made, oldest first, from an
  in-memory list (constant cost per request, however many results a busy server made);
- the whole folder is removed when the server exits (Ctrl-C, SIGTERM: see `web.launch`);
- folders of earlier servers that died without cleaning up are swept when the folder is made;
- the upload itself is deleted as soon as its answer is computed (`forget_upload`), and
  Gradio's upload and cache folder is the server's own, removed at exit
  (`use_private_gradio_folder`).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np

from .binding import current_owner, unique_name
from .settings import CACHE_SWEEP_S, CACHE_TTL_S, QUEUE_MAX_SIZE

RESULT_TTL_S = 900
# A session's state is dropped this long after it was last written (Gradio restarts the
# clock at each write; a closed tab's state goes after 15 minutes). A redraw whose radiograph
# file RESULT_TTL_S already removed raises ResultExpired.
STATE_TTL_S = 900
STATE_MAP_SIDE = 64
DISPLAY_JPEG_QUALITY = 92  # the page's images: no visible loss on a radiograph or a heatmap
THUMB_SIDE = 320  # the diagnosis gallery's thumbnails: drawn this large at most

# {"original": the radiograph's PNG, "cams": {label: uint8 map}, "result": API dict,
#  "drawn": {(label, opacity, side): overlay JPEG already made}}
SessionState = dict


class ResultExpired(Exception):
    """The result files of a session were removed (RESULT_TTL_S): upload the image again."""


RESULTS_PREFIX = "diachestxr-results-"
GRADIO_PREFIX = "diachestxr-gradio-"


class ResultFiles:
    """Fresh, uniquely named result files under one temporary folder made on first use, each
    bound to the session that made it (`binding`: `owner` tells the file route whose it is)."""

    def __init__(self, root: Path | None = None, ttl_s: float = RESULT_TTL_S) -> None:
        self._root = root
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._made: deque[tuple[float, Path]] = deque()  # (time, file), oldest first
        # Gradio's cached copy of a file outlives it: handed out again (a redraw) until the
        # file expires, then kept CACHE_TTL_S and swept every CACHE_SWEEP_S; one sweep's margin
        self.bound_s = ttl_s + CACHE_TTL_S + 2 * CACHE_SWEEP_S
        self._bound: deque[tuple[float, str]] = deque()  # (time, file id), oldest first
        self._owners: dict[str, str] = {}

    @property
    def root(self) -> Path:
        with self._lock:  # requests run in threads: one folder, made once
            if self._root is None:
                sweep_stale_folders(Path(tempfile.gettempdir()))
                self._root = Path(tempfile.mkdtemp(prefix=f"{RESULTS_PREFIX}{os.getpid()}-"))
                atexit.register(self.remove)
            self._root.mkdir(parents=True, exist_ok=True)
            return self._root

    def path(self, name: str) -> Path:
        """A new path for a file called `name`, made unique (`heatmap.jpg` ->
        `heatmap-<16 hex>.jpg`) and bound to the session of the event now running; expired
        files go first."""
        root, now, owner = self.root, time.time(), current_owner()
        key, unique = unique_name(name)
        out = root / key[:2] / unique  # 256 buckets: no directory grows huge
        with self._lock:
            while self._made and now - self._made[0][0] > self.ttl_s:
                self._made.popleft()[1].unlink(missing_ok=True)
            while self._bound and now - self._bound[0][0] > self.bound_s:
                self._owners.pop(self._bound.popleft()[1], None)
            self._made.append((now, out))
            if owner is not None:
                self._owners[key] = owner
                self._bound.append((now, key))
        out.parent.mkdir(exist_ok=True)
        return out

    def owner(self, file_id: str) -> str | None:
        """The session the result file with this id (its name's 16 hex digits) belongs to
        (None: anyone with its URL)."""
        return self._owners.get(file_id)

    def remove(self) -> None:
        """Remove every result file (at exit)."""
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._made.clear()

    def jpeg(self, image: np.ndarray, name: str = "heatmap.jpg") -> str:
        """A heatmap for the page as a JPEG file: a third of a fast PNG's encoding time and
        size, so less for Gradio to hash, copy and send (the PDF report and the CLI keep
        lossless images for what a user takes away)."""
        out = self.path(name)
        cv2.imwrite(str(out), _bgr(image), [cv2.IMWRITE_JPEG_QUALITY, DISPLAY_JPEG_QUALITY])
        return str(out)

    def json(self, result: Mapping[str, Any]) -> str:
        """The downloadable result: diachestxr-<task>-<id>.json (never the upload's name)."""
        out = self.path(f"diachestxr-{result['task']}.json")
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        return str(out)

    def label_json(self, value: Mapping[str, Any]) -> str:
        """A gr.Label value as the .json file gr.Label reads (its own format)."""
        out = self.path("label.json")
        out.write_text(json.dumps(value), encoding="utf-8")
        return str(out)


def use_private_gradio_folder() -> None:
    """Make Gradio's upload and cache folder (GRADIO_TEMP_DIR) private to this server, unless
    the deployer chose one: named with the process id, removed at exit with every upload and
    copy in it (Gradio's own shutdown leaves some), swept by the next server if this one was
    killed. Gradio reads the variable when it is imported: call this first."""
    if os.environ.get("GRADIO_TEMP_DIR") or "gradio" in sys.modules:
        return
    sweep_stale_folders(Path(tempfile.gettempdir()), GRADIO_PREFIX)
    folder = tempfile.mkdtemp(prefix=f"{GRADIO_PREFIX}{os.getpid()}-")
    os.environ["GRADIO_TEMP_DIR"] = folder
    atexit.register(shutil.rmtree, folder, True)


def sweep_stale_folders(tmp: Path, prefix: str = RESULTS_PREFIX) -> None:
    """Remove the folders of servers that are no longer running (killed before they could
    clean up), named <prefix><pid>-...; folders of live servers stay."""
    for folder in tmp.glob(f"{prefix}*"):
        pid = folder.name[len(prefix):].split("-")[0]
        if not pid.isdigit() or not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


PARTIAL_UPLOAD_AGE_S = 60  # Gradio's upload temp files older than this are leftovers
_last_partial_sweep = [0.0]


def forget_upload(path: str | os.PathLike) -> None:
    """Delete an upload once its answer is computed, if it is one (a file in Gradio's upload
    folder; a sample image is not), with the folder Gradio made for it. At most once a
    minute, also the leftovers of Gradio's upload route in a private folder: the empty temp
    file each upload leaves, and the partial file of an upload cut off midway."""
    import gradio.utils

    path = Path(path)
    uploads = Path(gradio.utils.get_upload_folder()).resolve()
    now = time.time()
    if uploads.name.startswith(GRADIO_PREFIX) and now - _last_partial_sweep[0] > PARTIAL_UPLOAD_AGE_S:
        _last_partial_sweep[0] = now
        for leftover in uploads.glob("tmp*"):
            try:
                if leftover.is_file() and now - leftover.stat().st_mtime > PARTIAL_UPLOAD_AGE_S:
                    leftover.unlink()
            except OSError:
                pass
    try:
        resolved = path.resolve()
        if uploads not in resolved.parents:
            return
        resolved.unlink(missing_ok=True)
        if resolved.parent != uploads and not any(resolved.parent.iterdir()):
            resolved.parent.rmdir()
    except OSError:  # already gone, or removed by another request just now
        pass


def _bgr(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else image[..., ::-1]  # OpenCV writes colour as BGR


IDLE_S = 1.0  # housekeeping waits until no request ran for this long...
BUSY_S = 10.0  # ...or this long, on a server that is never idle


def release_memory() -> None:
    """After each request: once the server is idle (at least every BUSY_S on one that never
    is), drop the radiographs no page read (see `original`) and give freed heap memory back
    to the system (glibc keeps it otherwise: a 49 MP upload's buffers, freed, would stay in
    the server's footprint). Not at each answer:
    trimming there cost the request 4-12 ms, itself and the fresh pages the next request's
    model faults in again."""
    global _housekeeper
    _last_release[0] = time.monotonic()
    with _housekeeper_lock:
        if _housekeeper is None:
            _housekeeper = threading.Thread(target=_housekeeping, name="diachestxr-housekeeping",
                                            daemon=True)
            _housekeeper.start()
    _release_wanted.set()


def _housekeeping() -> None:
    while True:
        _release_wanted.wait(timeout=UNREAD_TTL_S)  # an idle server's unread radiographs go too
        _release_wanted.clear()
        woke = time.monotonic()
        while (idle_in := _last_release[0] + IDLE_S - time.monotonic()) > 0:
            if time.monotonic() - woke > BUSY_S:
                break
            time.sleep(min(idle_in, BUSY_S))
        _drop_unread(older_than=time.monotonic() - UNREAD_TTL_S)
        if trim := _malloc_trim():
            trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_last_release = [0.0]
_release_wanted = threading.Event()
_housekeeper: threading.Thread | None = None
_housekeeper_lock = threading.Lock()


def new_state(prediction: Any, result: dict, files: ResultFiles) -> SessionState:
    """What a session keeps of a prediction (a Screening/DiagnosisResult with maps). Its
    radiograph's PNG is named now and written when first read (`original`)."""
    cams = {label: cv2.resize(np.rint(np.clip(e.cam, 0.0, 1.0) * 255).astype(np.uint8),
                              (STATE_MAP_SIDE, STATE_MAP_SIDE), interpolation=cv2.INTER_AREA)
            for label, e in prediction.explanations.items()}
    path, now = str(files.path("radiograph.png")), time.monotonic()
    with _unwritten_lock:
        _unwritten[path] = _Unread(now, prediction.image)
    _drop_unread(older_than=now - UNREAD_TTL_S)
    return {"original": path, "cams": cams, "result": result, "drawn": {}}


# The radiographs of recent answers, not yet written. The page's view step reads the PNG
# (the slider shows it) within a second of its answer; an API call never does, so its
# radiograph never reaches the disk, and its answer does not wait 6-10 ms for the encoding.
# At most KEPT_RADIOGRAPHS wait (1 MB each at most: twice the queue's length, so a page's
# view step queued behind a full queue still finds its own), none longer than about
# UNREAD_TTL_S; a session whose radiograph was dropped is told, if it asks, that its result
# expired.
KEPT_RADIOGRAPHS = 2 * QUEUE_MAX_SIZE
UNREAD_TTL_S = 60


@dataclass
class _Unread:
    made: float
    image: np.ndarray | None  # None once written
    lock: threading.Lock = field(default_factory=threading.Lock)  # one writer per radiograph


_unwritten: OrderedDict[str, _Unread] = OrderedDict()  # path -> its radiograph, oldest first
_unwritten_lock = threading.Lock()


def _drop_unread(older_than: float) -> None:
    """Drop the oldest unread radiographs: those made before `older_than`, and any beyond
    KEPT_RADIOGRAPHS."""
    with _unwritten_lock:
        while _unwritten and (len(_unwritten) > KEPT_RADIOGRAPHS
                              or next(iter(_unwritten.values())).made < older_than):
            _unwritten.popitem(last=False)


def original(state: SessionState) -> str:
    """The path of the session's radiograph PNG, written on first use: lossless, at a fast
    compression level (a new map method reads it again, and must see what the answer saw).
    ResultExpired once it is gone (RESULT_TTL_S) or was dropped unread."""
    from ..registry import PNG_COMPRESS_LEVEL

    path = state["original"]
    with _unwritten_lock:
        unread = _unwritten.get(path)
    if unread is not None:
        with unread.lock:  # a second reader waits here for the whole file
            if unread.image is not None:
                params = [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESS_LEVEL]
                if not cv2.imwrite(path, _bgr(unread.image), params):
                    raise OSError("the session's radiograph could not be written")
                unread.image = None
        with _unwritten_lock:
            _unwritten.pop(path, None)
    if not Path(path).is_file():
        raise ResultExpired("This result has expired; upload the image again.")
    return path


def empty_maps(state: SessionState) -> list[str]:
    """The labels whose map is empty (no region raised the score)."""
    return [label for label, cam in state["cams"].items() if not cam.any()]


def radiograph(state: SessionState) -> np.ndarray:
    """The session's radiograph, read back from its PNG."""
    image = cv2.imread(original(state), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ResultExpired("This result has expired; upload the image again.")
    return image


def draw(state: SessionState, label: str, opacity: float, files: ResultFiles,
         image: np.ndarray | None = None, side: int | None = None) -> str:
    """The overlay of `label`'s map on the radiograph, as a JPEG at most `side` px (None: the
    result's size), drawn once per session, label, opacity and size (the API's overlay and
    the page's slider are one file). `image`: the radiograph when the caller has it in
    memory, else it is read back from the session's copy."""
    from ..explain import overlay
    from ..io import shrink

    key = (label, round(float(opacity), 3), side)
    drawn = state.setdefault("drawn", {})
    if key in drawn and Path(drawn[key]).is_file():
        return drawn[key]
    gray = radiograph(state) if image is None else image
    if side:
        gray = shrink(gray, side)
    cam = state["cams"][label].astype(np.float32) / 255.0
    drawn[key] = files.jpeg(overlay(gray, cam, float(opacity)))
    return drawn[key]
