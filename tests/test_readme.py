"""The README is the project's front door: it must render as written and its snippets must run.

Structure (README.md and docs/*.md): every code fence is closed, the headings a Markdown parser
(markdown-it-py, CommonMark) sees are exactly the lines written as headings, no section heading
hides inside a code block, and relative links and #anchors point at something that exists.

Snippets (README.md only), run verbatim: code blocks tagged `bash` run as one shell script,
`python` blocks as Python scripts, each from an empty temporary folder with the checkout on
PYTHONPATH (as after `pip install`); a `python` block that uses gradio_client runs against the
app started on the port the snippet names. Blocks tagged `console` (install commands, the app's
start) and other tags (`bibtex`, `json`, ...) are shown, not run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest
import yaml
from markdown_it import MarkdownIt

from tests.conftest import ROOT, port_is_free, running_app

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 250  # a front door read in a few minutes
RUN_TAGS = {"bash", "python"}
SHOWN_TAGS = {"console", "bibtex", "json", "text", ""}
SNIPPET_TIMEOUT_S = 300
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")


@dataclass
class Block:
    start: int  # 0-based line of the opening fence, in the text without front matter
    info: str
    code: str

    @property
    def tag(self) -> str:
        return self.info.split()[0] if self.info.split() else ""


def split_front_matter(text: str) -> tuple[dict, str, int]:
    """(the YAML front matter, the Markdown body, how many lines the front matter took)."""
    if not text.startswith("---\n"):
        return {}, text, 0
    end = text.index("\n---\n", 4)
    return yaml.safe_load(text[4:end]), text[end + 5:], text[:end + 5].count("\n")


def scan(body: str) -> tuple[list[Block], list[tuple[int, str]], list[str]]:
    """A careful line parser: code blocks, headings outside them, and problems found."""
    blocks, headings, problems = [], [], []
    lines = body.split("\n")
    open_fence = None  # (fence chars, start line, info, code lines)
    for i, line in enumerate(lines):
        m = FENCE.match(line)
        if open_fence is not None:
            chars, start, info, code = open_fence
            if m and m["fence"][0] == chars[0] and len(m["fence"]) >= len(chars) and not m["info"].strip():
                blocks.append(Block(start, info, "\n".join(code) + "\n"))
                open_fence = None
            else:
                code.append(line)
                if re.match(r"^ {0,3}#{2,6}\s+\S", line):
                    problems.append(f"line {i + 1}: a section heading inside a code block: {line!r}")
            continue
        if m and not (m["fence"][0] == "`" and "`" in m["info"]):
            open_fence = (m["fence"], i, m["info"].strip(), [])
            continue
        h = HEADING.match(line)
        if h:
            headings.append((i, (h[2] or "").strip()))
    if open_fence is not None:
        problems.append(f"line {open_fence[1] + 1}: the code fence {open_fence[0]}{open_fence[2]} "
                        "is never closed: it swallows the rest of the page")
    return blocks, headings, problems


def parsed(body: str) -> tuple[list, list[tuple[int, str]]]:
    """markdown-it-py's view: fence tokens and (line, plain text) of every heading."""
    tokens = MarkdownIt("commonmark").parse(body)
    fences = [t for t in tokens if t.type == "fence"]
    headings = [(t.map[0], plain(tokens[i + 1])) for i, t in enumerate(tokens)
                if t.type == "heading_open"]
    return fences, headings


def plain(inline) -> str:
    return "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))


def slug(text: str) -> str:
    """GitHub's heading anchors."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_fences_close_and_headings_render_as_written(page):
    _, body, _ = split_front_matter(page.read_text(encoding="utf-8"))
    blocks, headings, problems = scan(body)
    assert not problems, f"{page.name}:\n" + "\n".join(problems)
    fences, md_headings = parsed(body)
    assert [b.start for b in blocks] == [f.map[0] for f in fences], (
        f"{page.name}: the code blocks start on other lines for a Markdown parser")
    # (inside a list item the parser strips the item's indentation)
    assert ([(b.info, dedent(b.code)) for b in blocks]
            == [(f.info.strip(), dedent(f.content)) for f in fences])
    ours = [line for line, _ in headings]
    theirs = [line for line, _ in md_headings]
    assert ours == theirs, (f"{page.name}: {len(ours)} headings written, {len(theirs)} rendered; "
                            f"written only: {sorted(set(ours) - set(theirs))}, "
                            f"rendered only: {sorted(set(theirs) - set(ours))}")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_and_anchors_exist(page):
    _, body, _ = split_front_matter(page.read_text(encoding="utf-8"))
    blocks, _, _ = scan(body)
    code_lines = {b.start + k for b in blocks for k in range(b.code.count("\n") + 2)}
    prose = "\n".join(l for i, l in enumerate(body.split("\n")) if i not in code_lines)
    prose = re.sub(r"`[^`\n]*`", "", prose)  # inline code is not a link
    anchors: dict[Path, set[str]] = {}

    def anchors_of(target: Path) -> set[str]:
        if target not in anchors:
            _, text, _ = split_front_matter(target.read_text(encoding="utf-8"))
            anchors[target] = {slug(h) for _, h in parsed(text)[1]}
        return anchors[target]

    bad = []
    for link in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+:", link):
            continue  # https:, mailto:
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            bad.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in anchors_of(target):
            bad.append(f"{link}: no heading with that anchor in {target.name}")
    assert not bad, f"{page.name}:\n" + "\n".join(bad)


def test_readme_is_a_front_door():
    text = README.read_text(encoding="utf-8")
    front, body, _ = split_front_matter(text)
    assert len(text.splitlines()) <= MAX_README_LINES
    # the Space's configuration, and the Hub model the app loads
    from diachestxr.registry import DEFAULT_HUB_REPO

    assert front["sdk"] == "gradio" and front["app_file"] == "app.py"
    assert DEFAULT_HUB_REPO in front["models"] and front["datasets"]
    assert "not a medical device" in body and "not for clinical use" in body
    blocks, _, _ = scan(body)
    tags = {b.tag for b in blocks}
    assert tags <= RUN_TAGS | SHOWN_TAGS, f"unknown code block tags: {tags - RUN_TAGS - SHOWN_TAGS}"
    for block in blocks:  # the README's snippets use files that exist wherever it is read
        assert "../shared" not in block.code and "chest.png" not in block.code


# ------------------------------------------------------------------ the snippets, run verbatim
def snippets(tag: str) -> list[Block]:
    _, body, _ = split_front_matter(README.read_text(encoding="utf-8"))
    return [b for b in scan(body)[0] if b.tag == tag]


def python_snippets(client: bool) -> list[Block]:
    return [b for b in snippets("python") if ("gradio_client" in b.code) == client]


@pytest.fixture(scope="module")
def snippet_env(tmp_path_factory) -> dict[str, str]:
    """As after `pip install .`: `python` and `diachestxr` on PATH, the package importable from
    anywhere, the bundled weights (no Hub), no downloads."""
    bin_dir = tmp_path_factory.mktemp("bin")
    for name, command in (("python", f'exec "{sys.executable}" "$@"'),
                          ("diachestxr", f'exec "{sys.executable}" -m diachestxr "$@"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{command}\n")
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "DIACHESTXR_HUB_REPO": "none",
           "DIACHESTXR_EXAMPLES_DOWNLOAD": "0", "GRADIO_ANALYTICS_ENABLED": "False",
           "PYTHONUNBUFFERED": "1"}
    for name in ("DIACHESTXR_WEIGHTS_DIR", "DIACHESTXR_EXAMPLES_DIR"):
        env.pop(name, None)
    return env


def run_snippet(command: list[str], code: str, env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(command, input=code, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=SNIPPET_TIMEOUT_S)
    assert proc.returncode == 0, (f"README snippet failed (exit {proc.returncode}):\n{code}\n"
                                  f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")
    return proc.stdout


def test_readme_command_line_snippet_runs(snippet_env, tmp_path):
    blocks = snippets("bash")
    assert blocks, "the README shows no command-line snippet (a ```bash block)"
    script = "set -euo pipefail\n" + "".join(b.code for b in blocks)
    out = run_snippet(["bash", "-s"], script, snippet_env, tmp_path)
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert out.strip() and not [r for r in records if "error" in r], out
    if "--cam-dir" in script:
        assert list(tmp_path.rglob("*.png")), "--cam-dir wrote no heatmap"


def test_readme_python_snippet_runs(snippet_env, tmp_path):
    blocks = python_snippets(client=False)
    assert blocks, "the README shows no Python API snippet (a ```python block)"
    for block in blocks:
        assert run_snippet([sys.executable, "-"], block.code, snippet_env, tmp_path).strip()


def test_readme_gradio_client_snippet_runs(snippet_env, tmp_path, app_url):
    blocks = python_snippets(client=True)
    assert blocks, "the README shows no gradio_client snippet"
    for block in blocks:
        m = re.search(r"""Client\(["']http://127\.0\.0\.1:(\d+)/?["']\)""", block.code)
        assert m, "the gradio_client snippet should call the local app: Client(\"http://127.0.0.1:PORT/\")"
        port = int(m[1])
        if app_url.rstrip("/").endswith(f":{port}"):  # the session's app took the README's port
            out = run_snippet([sys.executable, "-"], block.code, snippet_env, tmp_path)
        else:
            if not port_is_free(port):
                pytest.fail(f"port {port}, which the README's gradio_client snippet names, is in "
                            "use: stop what listens there (another `python app.py`?) and rerun")
            with running_app(None, None, tmp_path / "app.log", port=port):
                out = run_snippet([sys.executable, "-"], block.code, snippet_env, tmp_path)
        assert out.strip()
