"""Sample images for the demo: which ones exist, where they are, and where they came from.

`examples/manifest.csv` (in the repository) lists public chest X-rays with their task, label,
source, license and URL. The thirteen images (CC BY 3.0 / CC BY 4.0 / NIH, attribution in the
manifest) ship beside it, so a fresh clone and a Space show samples offline. They are found
in the first of:

1. `DIACHESTXR_EXAMPLES_DIR` (a folder holding the files named in the manifest);
2. the repository's `examples/` folder (the shipped copies);
3. a cache folder (`DIACHESTXR_CACHE_DIR`, else `~/.cache/diachestxr`)/examples, filled by
   downloading the manifest's URLs once. One quick connectivity check comes first, so an
   offline machine loses at most ~2 s; `DIACHESTXR_EXAMPLES_DOWNLOAD=0` skips it entirely.

Anything missing is simply left out: the app works with no examples at all.

`sample_path(name)` is the path of one sample by its manifest name (e.g. "4fed5061.jpg"), so
code and the CLI (`diachestxr predict --sample NAME`) can use them after `pip install`.
"""

from __future__ import annotations

import csv
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from .network import connect_error

log = logging.getLogger(__name__)

# A checkout's examples/, else the copy an installed wheel carries (diachestxr/sample_images)
REPO_EXAMPLES_DIR = next((d for d in (Path(__file__).resolve().parents[1] / "examples",
                                      Path(__file__).resolve().parent / "sample_images")
                          if (d / "manifest.csv").is_file()),
                         Path(__file__).resolve().parents[1] / "examples")
MANIFEST = REPO_EXAMPLES_DIR / "manifest.csv"
CONNECT_TIMEOUT_S = 1.5  # the one reachability check
DOWNLOAD_TIMEOUT_S = 10.0  # per file, once the host answered
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
MANIFEST_FIELDS = ("file", "task", "label", "source", "license", "attribution", "url")


@dataclass(frozen=True)
class Example:
    """One sample image: `path` exists on disk."""

    path: Path
    task: str  # "screening" | "diagnosis"
    label: str  # the dataset's label (for NIH images: its findings, "|"-separated)
    source: str
    license: str
    attribution: str
    url: str

    @property
    def name(self) -> str:
        return self.path.name


def read_manifest(manifest: str | os.PathLike = MANIFEST) -> list[dict[str, str]]:
    """The manifest rows (an empty list when there is no manifest)."""
    manifest = Path(manifest)
    if not manifest.is_file():
        log.info("no examples manifest at %s", manifest)
        return []
    with manifest.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in MANIFEST_FIELDS if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"{manifest}: missing column(s) {missing}; "
                         f"expected {list(MANIFEST_FIELDS)}")
    return rows


def _candidates(row: dict[str, str]) -> list[str]:
    """File names a row's image may have: the manifest's name, then the URL's (downloads keep
    the URL's name, since the public file may be a PNG where the local copy is a JPEG)."""
    names = [row["file"]]
    url_name = Path(urlparse(row.get("url", "")).path).name
    if url_name and url_name not in names:
        names.append(url_name)
    return names


def _find(folder: Path, row: dict[str, str]) -> Path | None:
    for name in _candidates(row):
        if (folder / name).is_file():
            return folder / name
    return None


def cache_dir() -> Path:
    base = os.environ.get("DIACHESTXR_CACHE_DIR") or Path.home() / ".cache" / "diachestxr"
    return Path(base) / "examples"


def _reachable(url: str, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    error = connect_error(url, timeout)
    if error:
        log.info("example images not downloaded: %s is unreachable (%s)", urlparse(url).hostname,
                 error)
    return error is None


def download(rows: list[dict[str, str]], folder: Path) -> None:
    """Fetch the rows' images missing from `folder`; failures are logged and skipped.

    Bounded: one connect check per host, and a host that times out (or refuses) once is not
    tried again, so a blackholed or stalled network costs one timeout, not one per file."""
    todo = [r for r in rows if r.get("url") and _find(folder, r) is None]
    usable: dict[str, bool] = {}
    for row in todo:
        host = urlparse(row["url"]).hostname or ""
        if host not in usable:
            usable[host] = _reachable(row["url"])
        if not usable[host]:
            continue
        target = folder / Path(urlparse(row["url"]).path).name
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with urllib.request.urlopen(row["url"], timeout=DOWNLOAD_TIMEOUT_S) as response:
                data = response.read(MAX_DOWNLOAD_BYTES + 1)
            if not data or len(data) > MAX_DOWNLOAD_BYTES:
                raise ValueError(f"unexpected size {len(data)} bytes")
            # write-then-rename: a half-written file never looks like a sample
            with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".part") as tmp:
                tmp.write(data)
            os.replace(tmp.name, target)
            log.info("downloaded example %s", target.name)
        except urllib.error.HTTPError as e:  # the host answers: only this file is missing
            log.warning("could not download example %s (%s); skipping it", row["url"], e)
        except (OSError, ValueError) as e:  # timeouts, resets, refusals: give up on the host
            log.warning("could not download example %s (%s); skipping %s", row["url"], e, host)
            usable[host] = False


def examples_folder(rows: list[dict[str, str]] | None = None, allow_download: bool | None = None
                    ) -> Path | None:
    """The folder the sample images come from (see the module doc), or None."""
    rows = read_manifest() if rows is None else rows
    explicit = os.environ.get("DIACHESTXR_EXAMPLES_DIR")
    if explicit:
        folder = Path(explicit).expanduser()
        if not folder.is_dir():
            log.warning("DIACHESTXR_EXAMPLES_DIR=%s is not a folder; no sample images", folder)
            return None
        return folder  # an explicit choice: never replaced by a download
    if any(_find(REPO_EXAMPLES_DIR, r) for r in rows):
        return REPO_EXAMPLES_DIR
    folder = cache_dir()
    if allow_download is None:
        setting = os.environ.get("DIACHESTXR_EXAMPLES_DOWNLOAD", "1").lower()
        allow_download = setting not in ("0", "false", "no", "off")
    if allow_download and rows:
        download(rows, folder)
    return folder if folder.is_dir() else None


def list_examples(task: str | None = None, allow_download: bool | None = None) -> list[Example]:
    """The sample images that exist on disk, in manifest order, optionally for one task."""
    rows = read_manifest()
    folder = examples_folder(rows, allow_download)
    if folder is None:
        return []
    found = []
    for row in rows:
        if task is not None and row["task"] != task:
            continue
        path = _find(folder, row)
        if path is None:
            continue
        found.append(Example(path=path.resolve(), task=row["task"], label=row["label"],
                             source=row["source"], license=row["license"],
                             attribution=row["attribution"], url=row["url"]))
    return found


def sample_names(task: str | None = None) -> list[str]:
    """The manifest's sample file names, in manifest order, optionally for one task."""
    return [row["file"] for row in read_manifest() if task is None or row["task"] == task]


def _available(rows: list[dict[str, str]]) -> str:
    tasks = dict.fromkeys(row["task"] for row in rows)
    return "; ".join(f"{task}: " + ", ".join(r["file"] for r in rows if r["task"] == task)
                     for task in tasks) or "none (no examples manifest)"


def sample_path(name: str) -> Path:
    """The path of a bundled sample image, by its file name in examples/manifest.csv (e.g.
    "4fed5061.jpg"; the name without its extension works too). Looks in the bundled copies
    (a checkout's examples/, or the wheel's diachestxr/sample_images), then in
    DIACHESTXR_EXAMPLES_DIR and the download cache; never downloads.

    Raises ValueError naming the available samples for an unknown name, FileNotFoundError
    when the manifest lists it but no copy is on disk."""
    rows = read_manifest()
    wanted = str(name).strip()
    row = next((r for r in rows if wanted in (r["file"], Path(r["file"]).stem)), None)
    if row is None:
        raise ValueError(f"unknown sample image {wanted!r}; the samples are: {_available(rows)}")
    for folder in (REPO_EXAMPLES_DIR, examples_folder(rows, allow_download=False)):
        if folder is not None and (path := _find(folder, row)) is not None:
            return path.resolve()
    raise FileNotFoundError(f"sample image {row['file']!r} is listed in {MANIFEST} but no copy "
                            f"is on disk (looked in {REPO_EXAMPLES_DIR})")
