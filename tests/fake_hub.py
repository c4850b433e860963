"""A tiny in-memory Hugging Face Hub for tests.

It implements just enough of the Hub's HTTP API for the *real* huggingface_hub client
(2.4.0) to work against it, so the tests exercise the library's own download and upload
code instead of a mock of ours:

- downloads: HEAD/GET /{repo}/resolve/{revision}/{filename} with the headers
  `hf_hub_download` reads (X-Repo-Commit, ETag, Content-Length) and the Hub's error codes
  (X-Error-Code: RepoNotFound / RevisionNotFound / EntryNotFound on 404);
- uploads: POST /api/repos/create, /api/validate-yaml, /api/models/{repo}/preupload/{rev}
  (always "regular" upload mode, so file contents come base64-inline in the commit),
  /api/models/{repo}/commit/{rev} (NDJSON), /api/models/{repo}/tag/{rev},
  /api/models/{repo}/branch/{branch}, DELETE /api/models/{repo}/tag/{tag};
- GET /api/models/{repo}[/revision/{rev}] (repo_info).

Usage:
    with FakeHub(token="hf_test") as hub:
        os.environ["HF_ENDPOINT"] = hub.url   # before huggingface_hub is imported, or
        # patch huggingface_hub.constants.ENDPOINT / HUGGINGFACE_CO_URL_TEMPLATE in-process
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


def git_blob_sha1(data: bytes) -> str:
    """The id git (and the Hub, as ETag of a non-LFS file) gives a file's content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> {path: data}
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    private: bool = False

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        return revision if revision in self.commits else None


class FakeHub:
    """An in-memory Hub on 127.0.0.1 (a free port) served from a background thread."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token  # when set, write calls must send "Authorization: Bearer <token>"
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.lock = threading.Lock()
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the hub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeHub":
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ state
    def create_repo(self, repo_id: str, private: bool = False) -> Repo:
        with self.lock:
            repo = self.repos.get(repo_id)
            if repo is None:
                repo = self.repos[repo_id] = Repo(private=private)
                # Like the Hub: a new repo starts with one commit holding .gitattributes.
                sha = self._new_sha(repo_id)
                repo.commits[sha] = {".gitattributes": b"*.safetensors filter=lfs -text\n"}
                repo.branches["main"] = sha
            return repo

    def commit(self, repo_id: str, revision: str, files: dict[str, bytes | None]) -> str:
        """Add/replace (bytes) or delete (None) files on branch `revision`; returns the sha."""
        with self.lock:
            repo = self.repos[repo_id]
            parent = repo.branches[revision]
            tree = dict(repo.commits[parent])
            for path, data in files.items():
                if data is None:
                    folder = path.rstrip("/") + "/"
                    tree = {p: d for p, d in tree.items() if p != path and not p.startswith(folder)}
                else:
                    tree[path] = data
            sha = self._new_sha(repo_id)
            repo.commits[sha] = tree
            repo.branches[revision] = sha
            return sha

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return dict(repo.commits[repo.resolve(revision)])

    def _new_sha(self, repo_id: str) -> str:
        self._counter += 1
        return hashlib.sha1(f"{repo_id}:{self._counter}".encode()).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects; every reply sets a length

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    # ------------------------------------------------------------------ helpers
    def _reply(self, status: int, body: bytes = b"", headers: dict | None = None,
               content_type: str = "application/json", send_body: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)

    def _json(self, status: int, payload, headers: dict | None = None) -> None:
        self._reply(status, json.dumps(payload).encode(), headers)

    def _error(self, status: int, code: str | None, message: str, headers: dict | None = None,
               send_body: bool = True) -> None:
        h = dict(headers or {})
        if code:
            h["X-Error-Code"] = code
        h["X-Error-Message"] = message
        self._reply(status, json.dumps({"error": message}).encode(), h, send_body=send_body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorised(self) -> bool:
        if self.hub.token is None:
            return True
        if self.headers.get("Authorization") == f"Bearer {self.hub.token}":
            return True
        self._error(401, None, "Invalid credentials in Authorization header")
        return False

    def _record(self) -> str:
        path = urlsplit(self.path).path
        with self.hub.lock:
            self.hub.requests.append((self.command, path))
        return path

    # ------------------------------------------------------------------ routes
    def do_HEAD(self) -> None:
        self._resolve(self._record(), send_body=False)

    def do_GET(self) -> None:
        path = self._record()
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/(.+))?", path)
        if m:
            return self._repo_info(unquote(m[1]), unquote(m[2] or "main"))
        self._resolve(path, send_body=True)

    def do_POST(self) -> None:
        path = self._record()
        body = self._body()
        if path == "/api/validate-yaml":
            return self._json(200, {"errors": [], "warnings": []})
        if not self._authorised():
            return
        if path == "/api/repos/create":
            return self._create_repo(json.loads(body or b"{}"))
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/(preupload|commit|tag|branch)/(.+)", path)
        if not m:
            return self._error(404, None, f"fake hub: no route for POST {path}")
        repo_id, action, revision = unquote(m[1]), m[2], unquote(m[3])
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository not found: {repo_id}")
        if action == "branch":
            if revision not in repo.branches:
                repo.branches[revision] = repo.branches["main"]
            return self._json(200, {})
        if action == "tag":
            return self._tag(repo, revision, json.loads(body))
        if revision not in repo.branches:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        if action == "preupload":
            return self._preupload(repo, revision, json.loads(body))
        return self._commit(repo_id, revision, body)

    def do_DELETE(self) -> None:
        path = self._record()
        self._body()
        if not self._authorised():
            return
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tag/(.+)", path)
        repo = self.hub.repos.get(unquote(m[1])) if m else None
        if repo is None or unquote(m[2]) not in repo.tags:
            return self._error(404, None, "tag not found")
        del repo.tags[unquote(m[2])]
        self._json(200, {})

    # ------------------------------------------------------------------ handlers
    def _resolve(self, path: str, send_body: bool) -> None:
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if not m:
            return self._error(404, None, f"fake hub: no route for {self.command} {path}",
                               send_body=send_body)
        repo_id, revision, filename = unquote(m[1]), unquote(m[2]), unquote(m[3])
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository not found: {repo_id}",
                               send_body=send_body)
        sha = repo.resolve(revision)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}",
                               send_body=send_body)
        data = repo.commits[sha].get(filename)
        if data is None:
            return self._error(404, "EntryNotFound", f"Entry not found: {filename}",
                               headers={"X-Repo-Commit": sha}, send_body=send_body)
        self._reply(200, data, {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha1(data)}"',
                                "Accept-Ranges": "none"},
                    content_type="application/octet-stream", send_body=send_body)

    def _repo_info(self, repo_id: str, revision: str) -> None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository not found: {repo_id}")
        sha = repo.resolve(revision)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        self._json(200, {"id": repo_id, "modelId": repo_id, "sha": sha, "private": repo.private,
                         "siblings": [{"rfilename": p} for p in sorted(repo.commits[sha])]})

    def _create_repo(self, payload: dict) -> None:
        if payload.get("type", "model") != "model":
            return self._error(400, None, "fake hub: only model repos")
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") \
            else payload["name"]
        if "/" not in repo_id:
            repo_id = f"user/{repo_id}"
        url = f"{self.hub.url}/{repo_id}"
        if repo_id in self.hub.repos:
            return self._json(409, {"error": "You already created this model repo", "url": url})
        private = payload.get("private") or payload.get("visibility") == "private"
        self.hub.create_repo(repo_id, private=bool(private))
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _tag(self, repo: Repo, revision: str, payload: dict) -> None:
        sha = repo.resolve(revision)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        tag = payload["tag"]
        if tag in repo.tags:
            return self._error(409, None, f"Tag {tag} already exists")
        repo.tags[tag] = sha
        self._json(200, {})

    def _preupload(self, repo: Repo, revision: str, payload: dict) -> None:
        tree = repo.commits[repo.branches[revision]]
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                  "oid": git_blob_sha1(tree[f["path"]]) if f["path"] in tree else None}
                 for f in payload["files"]]
        self._json(200, {"files": files, "commitOid": repo.branches[revision]})

    def _commit(self, repo_id: str, revision: str, body: bytes) -> None:
        changes: dict[str, bytes | None] = {}
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                continue
            if key == "file":
                if value.get("encoding") != "base64":
                    return self._error(400, None, "fake hub: only base64 file contents")
                changes[value["path"]] = base64.b64decode(value["content"])
            elif key in ("deletedFile", "deletedFolder"):
                changes[value["path"]] = None
            else:  # lfsFile: this fake never asks for LFS uploads
                return self._error(400, None, f"fake hub: unsupported commit operation {key}")
        sha = self.hub.commit(repo_id, revision, changes)
        self._json(200, {"success": True, "commitOid": sha,
                         "commitUrl": f"{self.hub.url}/{repo_id}/commit/{sha}"})
