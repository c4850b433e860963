"""Resolve, load and verify checkpoints: explicit path -> Hugging Face Hub -> bundled.

A checkpoint is `<task>.safetensors` (the state dict, fp16 storage allowed) plus
`<task>.json` beside it (arch, labels, input size, normalisation, thresholds, training data,
metrics). Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

from .config import CheckpointConfig, ConfigError
from .models import ChestXRayNet, build_model
from .network import connect_error
from .registry import HubFiles, ModelSpec, get_spec

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).parent / "weights"
HUB_CONNECT_TIMEOUT_S = 1.5


class WeightsError(RuntimeError):
    """No usable checkpoint: the message names the file and says what to do."""


@dataclass(frozen=True)
class WeightsSource:
    kind: str  # "local" | "hub" | "bundled"
    location: str  # a folder, or "repo@revision"

    def __str__(self) -> str:
        return f"{self.kind}: {self.location}"

    @property
    def public(self) -> str:
        """Where the weights came from, without this machine's paths (for the UI and API)."""
        if self.kind == "bundled":
            return "bundled with the app"
        if self.kind == "local":
            return f"local folder {Path(self.location).name}"
        return self.location  # repo@revision, or "in-memory model"


@dataclass
class LoadedModel:
    model: ChestXRayNet  # carries its spec and its checkpoint's config
    source: WeightsSource
    files: tuple[Path, Path] | None = None  # (safetensors, json)
    sha256: str | None = None  # of the .safetensors file as loaded (None: an in-memory model)

    @property
    def checkpoint_id(self) -> str | None:
        """The first 12 hex digits of the checkpoint's sha256: names the exact weights behind
        a result (in reports, `info()`), whichever way they were resolved."""
        return self.sha256[:12] if self.sha256 else None

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    @property
    def config(self) -> CheckpointConfig:
        return self.model.config


# ---------------------------------------------------------------------------------- saving
def save_checkpoint(model: torch.nn.Module, config: CheckpointConfig | None,
                    out_dir: str | os.PathLike, spec: ModelSpec, half: bool = True) -> Path:
    """Write <task>.safetensors (+ .json; None: the config describing `spec` alone); fp16
    storage halves the size at no accuracy cost."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
             for k, v in model.state_dict().items()}
    save_file(state, str(out / spec.filename), metadata={"task": spec.task, "arch": spec.arch})
    (config or CheckpointConfig.for_spec(spec)).write(out / spec.config_filename)
    return out / spec.filename


# --------------------------------------------------------------------------------- loading
def load_checkpoint(weights_file: str | os.PathLike, spec: ModelSpec | str,
                    source: WeightsSource | None = None) -> LoadedModel:
    """Build the network and load a checkpoint into it, verifying labels and shapes."""
    spec = get_spec(spec) if isinstance(spec, str) else spec
    weights_file = Path(weights_file)
    config_file = weights_file.with_name(spec.config_filename)
    if not config_file.is_file():
        config_file = weights_file.with_suffix(".json")
    if not config_file.is_file():
        raise WeightsError(f"{weights_file}: the config {spec.config_filename} that must sit "
                           "beside it is missing; copy both files of the checkpoint")
    try:
        config = CheckpointConfig.read(config_file)
    except ConfigError as e:
        raise WeightsError(str(e)) from None
    if config.arch != spec.arch or config.labels != spec.labels:
        raise WeightsError(
            f"{config_file}: the checkpoint is a {config.arch} with labels "
            f"{list(config.labels)}, but the {spec.task} task needs a {spec.arch} with labels "
            f"{list(spec.labels)}; use a checkpoint trained for the {spec.task} task")
    spec = config.apply_to(spec)
    try:
        # one read serves both the hash and the tensors: hashed here, once per load, never
        # again per result
        data = weights_file.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        state = load_safetensors(data)
        del data
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise WeightsError(f"{weights_file}: not a readable safetensors file ({e}); "
                           "download or export the checkpoint again") from None
    with torch.device("meta"):  # no random init of what the checkpoint replaces (0.3 s)
        model = build_model(spec)
    model.to_empty(device="cpu")  # fp32 memory, filled below: strict, so nothing stays unset
    try:
        model.load_state_dict(state, strict=True)  # copies fp16 tensors into fp32 parameters
    except RuntimeError as e:
        raise WeightsError(f"{weights_file}: tensors do not match the {spec.arch} network "
                           f"({str(e).splitlines()[0]} ...); the file is not a DiaChestXR "
                           f"{spec.task} checkpoint of this version") from None
    model.eval()
    model.config = config
    source = source or WeightsSource("local", str(weights_file.parent))
    return LoadedModel(model, source, (weights_file, config_file), sha256)


def load_model(task: str, weights_dir: str | os.PathLike | None = None) -> LoadedModel:
    """Load the model for `task` from the first place that has it (see module doc)."""
    spec = get_spec(task)
    weights_file, source = resolve_weights(spec, weights_dir)
    loaded = load_checkpoint(weights_file, spec, source)
    log.info("%s model loaded from %s", task, source)
    return loaded


def resolve_weights(spec: HubFiles, weights_dir: str | os.PathLike | None = None
                    ) -> tuple[Path, WeightsSource]:
    """The checkpoint file of `spec` (a task's ModelSpec, or the radiograph check's
    GATE_FILES) and where it came from: an explicit folder, else the Hub (or its cache), else
    the bundled one."""
    explicit = weights_dir or os.environ.get("DIACHESTXR_WEIGHTS_DIR")
    if explicit:
        path = Path(explicit)
        if path.suffix == ".safetensors" and not isinstance(spec, ModelSpec):
            path = path.parent  # a model's file was named: the gate's would sit beside it
        path = path if path.suffix == ".safetensors" else path / spec.filename
        if path.is_file():
            return path, WeightsSource("local", str(path.parent))
        # An explicit choice of model is never silently replaced by another checkpoint. The
        # radiograph check is no model a user picks: a folder without one leaves it to the
        # Hub, then to the bundled one.
        if isinstance(spec, ModelSpec):
            raise WeightsError(f"{path}: no {spec.task} checkpoint there (from "
                               f"{'--weights' if weights_dir else 'DIACHESTXR_WEIGHTS_DIR'}); "
                               f"expected {spec.filename} and {spec.config_filename}")
    hub_file = _from_hub(spec)
    if hub_file is not None:
        return hub_file, WeightsSource("hub", f"{spec.resolved_hub_repo}@{spec.resolved_hub_revision}")
    bundled = BUNDLED_DIR / spec.filename
    if bundled.is_file():
        return bundled, WeightsSource("bundled", str(BUNDLED_DIR))
    train = (f"python -m training.train --task {spec.task} ..." if isinstance(spec, ModelSpec)
             else "python -m training.train_gate --out RUN_DIR")
    raise WeightsError(
        f"no {spec.task} weights found: none in DIACHESTXR_WEIGHTS_DIR, none on the Hub "
        f"({spec.resolved_hub_repo}@{spec.resolved_hub_revision}), none bundled in "
        f"{BUNDLED_DIR}. Train one ({train}) and pass "
        "--weights RUN_DIR, or set DIACHESTXR_HUB_REPO to a repo that has them. "
        "Refusing to run with random weights.")


# ------------------------------------------------------------------------------------- Hub
_reachability: dict[str, bool] = {}
_reachability_lock = threading.Lock()


def hub_reachable(endpoint: str | None = None) -> bool:
    """One TCP connect, cached per endpoint: huggingface_hub would otherwise spend ~25 s of
    retries per file before giving up on an unreachable Hub."""
    from huggingface_hub import constants

    endpoint = endpoint or constants.ENDPOINT
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # behind a proxy a direct connect says nothing; huggingface_hub decides
    with _reachability_lock:
        if endpoint not in _reachability:
            error = connect_error(endpoint, HUB_CONNECT_TIMEOUT_S)
            if error:
                log.info("Hugging Face Hub at %s is unreachable (%s); using cached or "
                         "bundled weights", endpoint, error)
            _reachability[endpoint] = error is None
        return _reachability[endpoint]


def _from_hub(spec: HubFiles) -> Path | None:
    """The checkpoint from the Hub (or the HF cache), or None to fall back to bundled."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    repo = spec.resolved_hub_repo
    if repo.lower() in ("none", "off"):
        return None
    # Offline (by setting or because the Hub is unreachable): the standard HF cache only.
    # A pure cache lookup, not hf_hub_download(local_files_only=True): that one still builds
    # request headers, which fetch {endpoint}/api/agent-harnesses (3 s timeout) unless
    # telemetry or HF_HUB_OFFLINE is set -- 3 s more on an unreachable Hub.
    if constants.HF_HUB_OFFLINE or not hub_reachable():
        return _from_hf_cache(spec, repo)
    try:
        files = [hf_hub_download(repo, name, revision=spec.resolved_hub_revision, etag_timeout=5)
                 for name in (spec.filename, spec.config_filename)]
    except (LocalEntryNotFoundError, EntryNotFoundError) as e:
        where = "the local HF cache" if isinstance(e, LocalEntryNotFoundError) else "that repo"
        log.info("%s: %s@%s is not in %s", spec.task, repo, spec.resolved_hub_revision, where)
        return None
    except (HfHubHTTPError, OSError, ValueError) as e:
        log.warning("%s: could not download from the Hub %s@%s (%s); falling back",
                    spec.task, repo, spec.resolved_hub_revision, str(e).splitlines()[0])
        return None
    return Path(files[0])


def _from_hf_cache(spec: HubFiles, repo: str) -> Path | None:
    """The checkpoint from the standard HF cache (a revision's ref or commit), no network."""
    from huggingface_hub import try_to_load_from_cache

    revision = spec.resolved_hub_revision
    files = [try_to_load_from_cache(repo, name, revision=revision)
             for name in (spec.filename, spec.config_filename)]
    if not all(isinstance(f, str) for f in files):
        log.info("%s: %s@%s is not in the local HF cache", spec.task, repo, revision)
        return None
    return Path(files[0])
