"""A small in-memory stand-in for the Hugging Face Hub HTTP API, for offline tests.

It implements only what `huggingface_hub` 2.x and `transformers` 5.x use to create a model repo, commit files
inline ("regular" upload mode, no LFS/Xet), create branches and download files:

    POST /api/repos/create                                  create a repo (409 + {"url"} if it exists)
    GET  /api/whoami-v2                                     who owns the token
    POST /api/validate-yaml                                 README.md metadata check
    GET  /api/models/{ns}/{name}[/revision/{rev}]           model_info / repo_info (sha, siblings, private)
    GET  /api/models/{ns}/{name}/tree/{rev}[/{path}]        list_repo_tree / list_repo_files / snapshot_download
    POST /api/models/{ns}/{name}/preupload/{rev}            always answers uploadMode "regular"
    POST /api/models/{ns}/{name}/commit/{rev}               NDJSON commit with base64 file contents
    POST /api/models/{ns}/{name}/branch/{branch}            create a branch
    HEAD/GET /{ns}/{name}/resolve/{rev}/{path}              file metadata and download

Errors carry the `X-Error-Code` header (RepoNotFound, RevisionNotFound, EntryNotFound) that the client maps to
its exception classes. Writes need `Authorization: Bearer <anything non-empty>`. Every request is recorded in
`FakeHub.requests` so tests can check where a token travelled.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

OWNER = "user"  # the account every token belongs to; repo ids without a namespace land here
SEGMENT = r"([^/]+)"
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_sha(content: bytes) -> str:
    # The Hub's ETag for a non-LFS file is its git blob id; the client uses it as the cache key.
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    sha: str
    files: dict[str, bytes]
    message: str
    parent: str | None


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # branch name -> head commit sha
    pull_requests: int = 0

    def resolve(self, revision: str) -> Commit | None:
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        return self.commits.get(revision)

    def add_commit(self, branch: str, files: dict[str, bytes], message: str) -> Commit:
        parent = self.branches.get(branch)
        digest = hashlib.sha1(f"{self.repo_id}\0{parent}\0{message}\0{len(self.commits)}".encode())
        for path in sorted(files):
            digest.update(path.encode() + git_blob_sha(files[path]).encode())
        commit = Commit(digest.hexdigest(), files, message, parent)
        self.commits[commit.sha] = commit
        self.branches[branch] = commit.sha
        return commit


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class HubError(Exception):
    def __init__(self, status: int, message: str, error_code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.error_code = status, message, error_code
        self.headers = headers or {}


class FakeHub:
    """Server state plus the running HTTP server. Use `start_hub_server()` to create one."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()

    # --- helpers for tests -------------------------------------------------------------------------------
    def file(self, repo_id: str, path: str, revision: str = "main") -> bytes:
        return self.repos[repo_id].resolve(revision).files[path]

    def requests_to(self, pattern: str, method: str | None = None) -> list[RecordedRequest]:
        return [
            r for r in self.requests if re.search(pattern, r.path) and (method is None or r.method == method)
        ]

    # --- request handling ----------------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes):
        """Returns (status, extra headers, body bytes or JSON-able object)."""
        split = urlsplit(raw_path)
        path, query = split.path, {k: v[-1] for k, v in parse_qs(split.query).items()}
        token = _bearer_token(headers)
        routes = [
            ("POST", r"/api/repos/create", self.create_repo),
            ("GET", r"/api/whoami-v2", self.whoami),
            ("POST", r"/api/validate-yaml", self.validate_yaml),
            ("GET", rf"/api/models/{SEGMENT}/{SEGMENT}", self.repo_info),
            ("GET", rf"/api/models/{SEGMENT}/{SEGMENT}/revision/{SEGMENT}", self.repo_info),
            ("GET", rf"/api/models/{SEGMENT}/{SEGMENT}/tree/{SEGMENT}(?:/(.+))?", self.tree),
            ("POST", rf"/api/models/{SEGMENT}/{SEGMENT}/preupload/{SEGMENT}", self.preupload),
            ("POST", rf"/api/models/{SEGMENT}/{SEGMENT}/commit/{SEGMENT}", self.commit),
            ("POST", rf"/api/models/{SEGMENT}/{SEGMENT}/branch/{SEGMENT}", self.create_branch),
            ("HEAD", rf"/{SEGMENT}/{SEGMENT}/resolve/{SEGMENT}/(.+)", self.resolve_file),
            ("GET", rf"/{SEGMENT}/{SEGMENT}/resolve/{SEGMENT}/(.+)", self.resolve_file),
        ]
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                args = [unquote(group) if group is not None else None for group in match.groups()]
                if method == "POST" and handler is not self.validate_yaml and not token:
                    raise HubError(401, "Invalid credentials in Authorization header: a token is required")
                with self.lock:
                    return handler(*args, token=token, body=body, query=query, method=method)
        raise HubError(404, f"no route for {method} {path}")

    def _repo(self, namespace: str, name: str, token: str | None) -> Repo:
        repo = self.repos.get(f"{namespace}/{name}")
        # Like the Hub, a private repo is indistinguishable from a missing one without credentials.
        if repo is None or (repo.private and not token):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _commit_at(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def create_repo(self, *, body, **_):
        payload = json.loads(body)
        if payload.get("type", "model") != "model":
            raise HubError(400, "this test hub only hosts model repos")
        repo_id = f"{payload.get('organization') or OWNER}/{payload['name']}"
        url = f"{self.url}/{repo_id}"
        if repo_id in self.repos:
            return 409, {}, {"error": "You already created this model repo", "url": url}
        repo = Repo(repo_id, private=payload.get("visibility") == "private" or bool(payload.get("private")))
        repo.add_commit("main", {".gitattributes": GITATTRIBUTES}, "initial commit")
        self.repos[repo_id] = repo
        return 200, {}, {"url": url, "name": repo_id, "id": repo_id}

    def whoami(self, *, token, **_):
        if not token:
            raise HubError(401, "Invalid credentials in Authorization header")
        return 200, {}, {"type": "user", "name": OWNER, "auth": {"type": "access_token"}}

    def validate_yaml(self, *, body, **_):
        content = json.loads(body)["content"]
        match = re.match(r"\A---\s*\n(.*?)\n---\s*\n", content, re.DOTALL)
        if match is None:
            return 200, {}, {"warnings": [{"message": "empty or missing yaml metadata in repo card"}]}
        try:
            metadata = yaml.safe_load(match.group(1))
        except yaml.YAMLError as error:
            return 400, {}, {"errors": [{"message": f"invalid YAML: {error}"}]}
        if metadata is not None and not isinstance(metadata, dict):
            return 400, {}, {"errors": [{"message": "metadata must be a YAML mapping"}]}
        return 200, {}, {"warnings": []}

    def repo_info(self, namespace, name, revision=None, *, token, query, **_):
        repo = self._repo(namespace, name, token)
        commit = self._commit_at(repo, revision or "main")
        with_blobs = query.get("blobs", "").lower() in ("1", "true")
        siblings = []
        for path, content in sorted(commit.files.items()):
            sibling = {"rfilename": path}
            if with_blobs:
                sibling.update(size=len(content), blobId=git_blob_sha(content))
            siblings.append(sibling)
        info = {"id": repo.repo_id, "modelId": repo.repo_id, "sha": commit.sha, "private": repo.private}
        return 200, {}, {**info, "siblings": siblings}

    def tree(self, namespace, name, revision, folder, *, token, query, **_):
        repo = self._repo(namespace, name, token)
        commit = self._commit_at(repo, revision)
        prefix = f"{folder.strip('/')}/" if folder else ""
        recursive = query.get("recursive", "").lower() in ("1", "true")
        entries: dict[str, dict] = {}
        for path, content in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            # Folders are listed too, as the Hub does; their oid only needs to be stable here.
            folder_depths = range(1, len(parts)) if recursive else range(1, min(len(parts), 2))
            for depth in folder_depths:
                folder_path = prefix + "/".join(parts[:depth])
                entries.setdefault(folder_path, {"type": "directory", "path": folder_path, "oid": "0" * 40})
            if recursive or len(parts) == 1:
                entries[path] = {
                    "type": "file",
                    "path": path,
                    "size": len(content),
                    "oid": git_blob_sha(content),
                }
        if folder and not entries:
            raise HubError(404, f"{folder} does not exist at {revision}", "EntryNotFound")
        return 200, {}, sorted(entries.values(), key=lambda entry: entry["path"])

    def preupload(self, namespace, name, revision, *, token, body, query, **_):
        repo = self._repo(namespace, name, token)
        existing = {} if query.get("create_pr") else self._commit_at(repo, revision).files
        files = [
            {
                "path": file["path"],
                "uploadMode": "regular",  # content travels inline in the commit, no LFS round trip
                "shouldIgnore": False,
                "oid": git_blob_sha(existing[file["path"]]) if file["path"] in existing else None,
            }
            for file in json.loads(body)["files"]
        ]
        return 200, {}, {"files": files}

    def commit(self, namespace, name, revision, *, token, body, query, **_):
        repo = self._repo(namespace, name, token)
        base = self._commit_at(repo, revision)
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        if header.get("parentCommit") and not base.sha.startswith(header["parentCommit"]):
            raise HubError(412, f"parent commit {header['parentCommit']} is not the head of {revision}")
        files = dict(base.files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                del files[value["path"]]
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {path: data for path, data in files.items() if not path.startswith(folder)}
            else:
                raise HubError(
                    400, f"unsupported commit operation {key!r} (this test hub has no LFS storage)"
                )
        branch = revision if revision in repo.branches else None
        pull_request_url = None
        if query.get("create_pr"):
            repo.pull_requests += 1
            branch = f"refs/pr/{repo.pull_requests}"
            repo.branches[branch] = base.sha
            pull_request_url = f"{self.url}/{repo.repo_id}/discussions/{repo.pull_requests}"
        elif branch is None:
            raise HubError(400, f"can only commit on a branch, {revision!r} is a commit id")
        message = header.get("summary", "") + (
            "\n\n" + header["description"] if header.get("description") else ""
        )
        commit = repo.add_commit(branch, files, message)
        commit_url = f"{self.url}/{repo.repo_id}/commit/{commit.sha}"
        return 200, {}, {"commitUrl": commit_url, "commitOid": commit.sha, "pullRequestUrl": pull_request_url}

    def create_branch(self, namespace, name, branch, *, token, body, **_):
        repo = self._repo(namespace, name, token)
        if branch in repo.branches:
            raise HubError(409, f"Reference refs/heads/{branch} already exists")
        starting_point = (json.loads(body) if body else {}).get("startingPoint") or "main"
        repo.branches[branch] = self._commit_at(repo, starting_point).sha
        return 200, {}, {}

    def resolve_file(self, namespace, name, revision, path, *, token, method, **_):
        repo = self._repo(namespace, name, token)
        commit = self._commit_at(repo, revision)
        if path not in commit.files:
            # The client caches "this file does not exist at this commit", keyed by X-Repo-Commit.
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        content = commit.files[path]
        headers = {
            "X-Repo-Commit": commit.sha,
            "ETag": f'"{git_blob_sha(content)}"',
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(content)),
        }
        return 200, headers, b"" if method == "HEAD" else content


def _bearer_token(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization", "")
    if value.lower().startswith("bearer "):
        return value[len("bearer ") :].strip() or None
    return None


def _make_handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client pools connections

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            body = self._read_body()
            headers = {key.lower(): value for key, value in self.headers.items()}
            with hub.lock:
                hub.requests.append(RecordedRequest(self.command, self.path, headers, body))
            try:
                status, extra_headers, payload = hub.handle(self.command, self.path, headers, body)
            except Exception as error:  # an unexpected failure must reach the test as a readable 500
                if not isinstance(error, HubError):
                    error = HubError(500, f"fake hub crashed: {error!r}")
                status, extra_headers, payload = error.status, dict(error.headers), {"error": error.message}
                if error.error_code:
                    extra_headers["X-Error-Code"] = error.error_code
                extra_headers["X-Error-Message"] = error.message
            if not isinstance(payload, bytes):
                payload = json.dumps(payload).encode()
                extra_headers.setdefault("Content-Type", "application/json")
            self.send_response(status)
            extra_headers.setdefault("Content-Length", str(len(payload)))
            for key, value in extra_headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _serve

        def log_message(self, format, *args):  # noqa: A002 - signature fixed by BaseHTTPRequestHandler
            pass  # keep pytest output clean; requests are recorded in hub.requests instead

    return Handler


def start_hub_server() -> FakeHub:
    """Start a fake Hub on 127.0.0.1 (free port) in a background thread. Call `.close()` when done."""
    return FakeHub()
