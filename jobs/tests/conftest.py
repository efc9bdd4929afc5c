"""Shared fixtures: a scripted ingest server, a subprocess runner, env isolation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

JOBS_DIR = Path(__file__).resolve().parent.parent
TOKEN = "tok-SECRET-d41d8cd98f00"  # tests assert it never shows up in any output

# Strict (CI=true, or LADDER_STRICT_TESTS=1 as `npm test` sets by default): the project's setup
# installs torch (jobs/system-packages.txt), so its absence is a broken setup, and a suite that
# skips 90 tests and exits 0 would hide that. Read once here: _isolate_env clears LADDER_* per test.
STRICT = os.environ.get("CI", "").lower() in ("true", "1", "yes") or os.environ.get("LADDER_STRICT_TESTS") == "1"
TORCH_MARK = "torch"


def _torch_problem() -> str | None:
    """None when `import torch` works, else why not (the real import: a broken install counts)."""
    try:
        import torch  # noqa: F401
    except Exception as e:  # ImportError, or an install that fails while loading its libraries
        return f"torch cannot be imported ({type(e).__name__}: {e})"
    return None


def _no_torch(problem: str) -> None:
    """Strict: stop the whole run, loudly. Otherwise the caller skips with this reason."""
    if STRICT:
        pytest.exit(
            f"{problem}. The torch job kinds' tests need it and this is a strict run (CI=true or "
            "LADDER_STRICT_TESTS=1), where a missing prerequisite fails instead of skipping. Install "
            "jobs/system-packages.txt (Debian) or PyTorch; or run with LADDER_STRICT_TESTS=0 outside CI "
            "to skip those tests.",
            returncode=1,
        )


def require_torch():
    """For a test module whose every test needs torch: returns the torch module; without torch the
    module is skipped with the reason (strict: the run stops)."""
    problem = _torch_problem()
    if problem is None:
        import torch

        return torch
    _no_torch(problem)
    module = sys._getframe(1).f_globals.get("__name__", "this module")  # the skip is reported at this line
    pytest.skip(f"{problem}; strict mode off, so all of {module} is skipped", allow_module_level=True)


def pytest_configure(config):
    config.addinivalue_line("markers", f"{TORCH_MARK}: the test needs PyTorch (skipped without it; strict runs fail)")


def pytest_report_header(config):
    return f"ladder: strict={'on' if STRICT else 'off'} (CI / LADDER_STRICT_TESTS)"


def pytest_collection_modifyitems(config, items):
    # Only tests marked `torch` need it; the rest of their module still runs without it.
    needing = [item for item in items if item.get_closest_marker(TORCH_MARK)]
    problem = _torch_problem() if needing else None
    if problem is None:
        return
    _no_torch(problem)
    skip = pytest.mark.skip(reason=f"{problem}; strict mode off, so the tests that need it are skipped")
    for item in needing:
        item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch):
    # Tests must not see the caller's LADDER_* variables or HTTP proxies (the test server
    # is on 127.0.0.1), and in-process jobs must start with a clear stop flag.
    for name in list(os.environ):
        if name.startswith("LADDER_") or name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)
    from ladder_jobs import signals

    signals.reset()
    yield
    signals.reset()


class IngestServer:
    """Records every POST; answers with the next status in `script` (200 when empty)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[int] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with server.lock:
                    status = server.script.pop(0) if server.script else 200
                    server.requests.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": json.loads(body),
                            "status": status,
                        }
                    )
                reply = b'{"ok":true}' if status < 300 else b'{"error":"scripted failure"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def ok(self, path_suffix: str) -> list[dict]:
        """Accepted (2xx) requests whose path ends with path_suffix."""
        with self.lock:
            return [r for r in self.requests if r["path"].endswith(path_suffix) and r["status"] < 300]

    def delivered_points(self) -> list[dict]:
        return [p for r in self.ok("/metrics") for p in r["body"]["points"]]


@pytest.fixture
def ingest():
    server = IngestServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def job_env(tmp_path: Path, **extra: str) -> dict:
    """Environment for a job subprocess: nothing LADDER_* from outside, dirs under tmp_path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LADDER_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env["PYTHONPATH"] = str(JOBS_DIR)
    env["LADDER_CHECKPOINT_DIR"] = str(tmp_path / "ckpt")
    env["LADDER_OUTPUT_DIR"] = str(tmp_path / "out")
    env.update(extra)
    return env


def write_config(tmp_path: Path, config: dict, name: str = "cfg.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return path


def run_job(args: list[str], env: dict, cwd: Path | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ladder_jobs", *args],
        env=env,
        cwd=cwd or JOBS_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_points(path: Path) -> dict:
    """metrics.jsonl -> {(name, step): value}; a repeated (name, step) must repeat its value."""
    points: dict = {}
    for line in path.read_text().splitlines():
        p = json.loads(line)
        assert set(p) == {"name", "step", "value"}
        key = (p["name"], p["step"])
        assert points.get(key, p["value"]) == p["value"], f"{key} logged twice with different values"
        points[key] = p["value"]
    return points


def checkpoint_steps(ckpt_dir: Path) -> list[int]:
    """Steps of the checkpoints in ckpt_dir (files ckpt-<8-digit step>.pt), ascending."""
    return sorted(int(p.name[5:13]) for p in ckpt_dir.glob("ckpt-*.pt"))


def logged_step(out_dir: Path, step: int):
    """A stop condition: some point at `step` or later is in the offline metrics.jsonl (written at once)."""
    metrics = out_dir / "metrics.jsonl"
    return lambda: metrics.exists() and any(json.loads(l)["step"] >= step for l in metrics.read_text().splitlines())


def checkpoint_written(ckpt_dir: Path, step: int):
    """A stop condition: the checkpoint of `step` exists."""
    return lambda: (ckpt_dir / f"ckpt-{step:08d}.pt").exists()


def stop_with_sigterm(kind: str, config_path: Path, env: dict, stop_when, deadline_s: float = 90) -> int:
    """Runs `kind` until `stop_when()` holds, sends SIGTERM (what Kubernetes sends on eviction),
    checks the job exits 143 without a result, and returns the step of its newest checkpoint."""
    proc = subprocess.Popen([sys.executable, "-m", "ladder_jobs", "run", "--kind", kind, "--config", str(config_path)],
                            env=env, cwd=JOBS_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + deadline_s
    try:
        while not stop_when():
            assert proc.poll() is None, f"{kind} ended before the stop point: {proc.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, f"{kind} did not reach the stop point in {deadline_s} s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert not (Path(env["LADDER_OUTPUT_DIR"]) / "result.json").exists(), "a stopped job must not report a result"
    steps = checkpoint_steps(Path(env["LADDER_CHECKPOINT_DIR"]))
    assert steps, "SIGTERM left no checkpoint"
    return steps[-1]
