"""Publish trained checkpoints to the Hugging Face Hub, with a model card.

    python -m training.push_to_hub runs/screening runs/diagnosis --repo USER/NAME --tag v1
    python -m training.push_to_hub diachestxr/weights --card-only      # write <task>.md only

A RUN_DIR holds <task>.safetensors + <task>.json (what `python -m training.train` writes; a
folder may hold both tasks, like diachestxr/weights/) and optionally the output of
`python -m diachestxr evaluate` as <task>_metrics.json or metrics.json. Uploaded, in one
commit: every <task>.safetensors and <task>.json, a <task>.md model card per task, and a
README.md (the Hub's model card) combining the cards of all tasks in the repo. A folder that
holds the radiograph check (gate.safetensors + gate.json, from `python -m training.train_gate`,
or diachestxr/weights/) publishes it too; the app resolves it from the Hub as the models.

The app resolves `DIACHESTXR_HUB_REPO` at `DIACHESTXR_HUB_REVISION` (default tag "v1"), so
publish with `--tag v1` (or a new tag, then point the deployment at it). The token comes from
--token, HF_TOKEN or `hf auth login`; HF_ENDPOINT selects another Hub.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from diachestxr.card import NOTICE, demote_headings, model_card
from diachestxr.config import CheckpointConfig, ConfigError
from diachestxr.registry import DEFAULT_HUB_REVISION, GATE_FILES, SPECS, TASKS

log = logging.getLogger("training.push_to_hub")

# ------------------------------------------------------------------------ run folders
def find_checkpoints(run_dir: str | Path) -> dict[str, tuple[Path, Path, CheckpointConfig]]:
    """{task: (safetensors, config json, config)} for every task checkpoint in run_dir."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SystemExit(f"{run_dir}: not a folder (expected a training run folder)")
    found = {}
    for task, spec in SPECS.items():
        weights, config_file = run_dir / spec.filename, run_dir / spec.config_filename
        if not weights.is_file():
            continue
        if not config_file.is_file():
            raise SystemExit(f"{config_file}: missing; the config must sit beside {weights.name}")
        try:
            found[task] = (weights, config_file, CheckpointConfig.read(config_file))
        except ConfigError as e:
            raise SystemExit(str(e)) from None
    if not found:
        raise SystemExit(f"{run_dir}: no checkpoint there (expected "
                         f"{' or '.join(s.filename for s in SPECS.values())} + its .json)")
    return found


def find_eval_metrics(run_dir: str | Path, task: str) -> dict | None:
    """The `diachestxr evaluate` output for `task` in run_dir, if any."""
    for name in (f"{task}_metrics.json", "metrics.json"):
        path = Path(run_dir) / name
        if path.is_file():
            try:
                metrics = json.loads(path.read_text())
            except json.JSONDecodeError:
                log.warning("%s: not valid JSON; ignored", path)
                continue
            if metrics.get("task") == task:
                return metrics
    return None


def repo_card(cards: dict[str, str], repo_id: str | None = None) -> str:
    """README.md for a repo holding the cards of one or more tasks (Hub metadata on top)."""
    front = ["---", "tags:", "- chest-x-ray", "- medical-imaging", "- image-classification",
             "- grad-cam", "- diachestxr", "pipeline_tag: image-classification", "---", ""]
    body = [f"# DiaChestXR models{f' ({repo_id})' if repo_id else ''}", "", NOTICE, "",
            "Checkpoints of DiaChestXR — chest X-ray screening "
            "(COVID-19 / Pneumonia / Normal) and NIH ChestX-ray14 diagnosis with Grad-CAM "
            "explanations — in the `diachestxr` package's format: `<task>.safetensors` + "
            "`<task>.json`. Tasks in this repo: " + ", ".join(f"`{t}`" for t in cards) + ".", ""]
    for task in TASKS:
        if task in cards:
            body += [demote_headings(cards[task]).rstrip(), ""]
    return "\n".join(front + body)


def write_model_cards(run_dir: str | Path, out_dir: str | Path | None = None,
                      repo_id: str | None = None, revision: str | None = None) -> list[Path]:
    """Write <task>.md beside each checkpoint of run_dir (or into out_dir); e.g. the cards of
    the bundled weights: write_model_cards("diachestxr/weights")."""
    out_dir = Path(out_dir or run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for task, (_, _, config) in find_checkpoints(run_dir).items():
        path = out_dir / f"{task}.md"
        path.write_text(model_card(config, find_eval_metrics(run_dir, task), repo_id, revision) + "\n")
        written.append(path)
    return written


# ------------------------------------------------------------------------------ upload
def _verify(weights: Path, task: str) -> None:
    """Refuse to publish a checkpoint the package could not load."""
    from diachestxr.weights import WeightsError, load_checkpoint

    try:
        load_checkpoint(weights, task)
    except WeightsError as e:
        raise SystemExit(f"not publishing: {e}") from None


def _verify_gate(folder: Path) -> None:
    from diachestxr.gate import RadiographGate
    from diachestxr.weights import WeightsError

    try:
        RadiographGate.load(folder)
    except WeightsError as e:
        raise SystemExit(f"not publishing: {e}") from None


def push_to_hub(run_dirs: list[str | Path] | str | Path, repo_id: str, revision: str = "main",
                tag: str | None = None, private: bool = False, token: str | None = None,
                move_tag: bool = False, commit_message: str | None = None,
                verify: bool = True) -> dict:
    """Upload the checkpoints of `run_dirs` (+ model cards) to `repo_id` in one commit on
    branch `revision`, then optionally tag that commit. Returns {"commit_url", "commit",
    "tag", "files"}."""
    from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    run_dirs = [run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs)
    found: dict[str, tuple[Path, Path, dict, Path]] = {}
    for run_dir in run_dirs:
        for task, (weights, config_file, config) in find_checkpoints(run_dir).items():
            if task in found:
                raise SystemExit(f"two {task} checkpoints given ({found[task][3]} and {run_dir}); "
                                 "publish one per task")
            found[task] = (weights, config_file, config, Path(run_dir))
    # the radiograph check travels with the models when a run folder holds one (the app
    # resolves it as it resolves them: diachestxr.gate.RadiographGate.load)
    gates = [Path(d) for d in run_dirs if all((Path(d) / name).is_file() for name in
                                              (GATE_FILES.filename, GATE_FILES.config_filename))]
    if len(gates) > 1:
        raise SystemExit(f"two radiograph checks given ({gates[0]} and {gates[1]}); publish one")
    if verify:
        for task, (weights, *_rest) in found.items():
            _verify(weights, task)
        for folder in gates:
            _verify_gate(folder)

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    if revision != "main":
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    published_rev = tag or revision
    cards = {task: model_card(config, find_eval_metrics(run_dir, task), repo_id, published_rev)
             for task, (_, _, config, run_dir) in found.items()}
    # README.md describes every task in the repo: keep the cards of tasks published earlier.
    for task in (t for t in TASKS if t not in cards):
        try:
            cards[task] = Path(hf_hub_download(repo_id, f"{task}.md", revision=revision,
                                               token=token, endpoint=api.endpoint)).read_text()
        except (EntryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError):
            pass

    with tempfile.TemporaryDirectory(prefix="diachestxr-push-") as staging:
        staging = Path(staging)
        operations = []
        for task, (weights, config_file, _, _) in found.items():
            card = staging / f"{task}.md"
            card.write_text(cards[task] + "\n")
            for path in (weights, config_file, card):
                operations.append(CommitOperationAdd(path_in_repo=path.name, path_or_fileobj=str(path)))
        for folder in gates:
            for name in (GATE_FILES.filename, GATE_FILES.config_filename):
                operations.append(CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name)))
        readme = staging / "README.md"
        readme.write_text(repo_card({t: cards[t] for t in TASKS if t in cards}, repo_id) + "\n")
        operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(readme)))
        # One create_commit (not upload_folder): one atomic commit, so a tag never points at
        # a state where a task's weights and config disagree.
        info = api.create_commit(repo_id, operations=operations, revision=revision,
                                 commit_message=commit_message or
                                 f"Upload DiaChestXR {', '.join(found)} checkpoint(s)")
    if tag:
        try:
            api.create_tag(repo_id, tag=tag, revision=info.oid,
                           tag_message=f"DiaChestXR {', '.join(found)}")
        except HfHubHTTPError as e:
            if e.response.status_code != 409:
                raise
            if not move_tag:
                raise SystemExit(
                    f"tag {tag!r} already exists on {repo_id}; deployments pinned to it would not "
                    f"see this commit ({info.oid}). Publish under a new tag and point "
                    "DIACHESTXR_HUB_REVISION at it, or pass --move-tag to move it.") from None
            api.delete_tag(repo_id, tag=tag)
            api.create_tag(repo_id, tag=tag, revision=info.oid)
    files = [op.path_in_repo for op in operations]
    log.info("pushed %s to %s (commit %s%s)", ", ".join(files), repo_id, info.oid,
             f", tag {tag}" if tag else "")
    return {"commit_url": info.commit_url, "commit": info.oid, "tag": tag, "files": files}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.push_to_hub",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="folder(s) with <task>.safetensors + <task>.json")
    parser.add_argument("--repo", help="USER/NAME of the model repo (created if missing)")
    parser.add_argument("--revision", default="main", help="branch to commit to (default: main)")
    parser.add_argument("--tag", help=f"tag the commit, e.g. {DEFAULT_HUB_REVISION} (the revision "
                        "the app pins by default)")
    parser.add_argument("--move-tag", action="store_true", help="move --tag if it already exists")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN or `hf auth login`)")
    parser.add_argument("--message", help="commit message")
    parser.add_argument("--card-only", nargs="?", const="", metavar="OUT_DIR",
                        help="only write <task>.md model card(s) (into OUT_DIR, default: beside "
                        "the checkpoints); nothing is uploaded")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.card_only is not None:
        for run_dir in args.run_dirs:
            for path in write_model_cards(run_dir, args.card_only or None, args.repo, args.tag):
                print(path)
        return 0
    if not args.repo:
        parser.error("--repo USER/NAME is required (unless --card-only)")
    result = push_to_hub(args.run_dirs, args.repo, revision=args.revision, tag=args.tag,
                         private=args.private, token=args.token, move_tag=args.move_tag,
                         commit_message=args.message)
    print(json.dumps(result, indent=2))
    rev = args.tag or args.revision
    print(f"\nPoint a deployment at it:\n  DIACHESTXR_HUB_REPO={args.repo} "
          f"DIACHESTXR_HUB_REVISION={rev} python app.py", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
