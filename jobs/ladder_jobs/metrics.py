"""MetricsClient: pushes metric points and the final result.

Online (LADDER_INGEST_URL set):
    POST {url}/trials/{trial_id}/metrics  {"points": [{"name", "step", "value"}, ...]}
    POST {url}/trials/{trial_id}/result   {"metrics": {...}, "config": {...}, "meta": {...}}
    with "Authorization: Bearer {token}". Points are batched; the ingest side is idempotent
    per (trial, name, step), so resending a batch after a retry or a resumed run is safe.
Offline (no URL):
    points are appended to $LADDER_OUTPUT_DIR/metrics.jsonl, one object a line; a resumed run
    may append the same (name, step) again with the same value (readers keep the last one).
    The result goes to $LADDER_OUTPUT_DIR/result.json, written atomically.
"""

from __future__ import annotations

import atexit
import json
import math
import operator
import random
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Mapping

from ladder_jobs.fsutil import atomic_write_json
from ladder_jobs.protocol import JobEnv

# -----------------------------------------------------------------------------
# defaults (constructor arguments override them; tests shrink the timings)
FLUSH_POINTS = 500  # send a batch once this many points are buffered (also the max batch size)
FLUSH_INTERVAL_S = 2.0  # ... or this often, so a slow job still shows live progress
RETRY_BASE_S = 0.2  # first backoff; doubles each retry
RETRY_MAX_S = 5.0  # backoff cap
RETRY_DEADLINE_S = 60.0  # give up (raise) when the next retry would start after this
REQUEST_TIMEOUT_S = 30.0  # per HTTP request
WARN_NONFINITE_PER_NAME = 3  # a diverged run logs nan every step; warn a few times, not 10k
# What the ingest endpoint accepts (core/ingest/store.ts is the authority); checked here too so
# a job fails at the call that is wrong, not later in the background flush.
MAX_NAME_LENGTH = 200
MAX_STEP = 2**31 - 1
# -----------------------------------------------------------------------------


class IngestError(RuntimeError):
    """The ingest endpoint refused a push (4xx) or stayed unreachable past the retry deadline."""

    def __init__(self, message: str, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a GET and carry the Authorization header to
    # wherever the redirect points. A redirect is a misconfigured URL: surface it as an error.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _warn(message: str) -> None:
    print(f"ladder_jobs: {message}", file=sys.stderr, flush=True)


class MetricsClient:
    def __init__(
        self,
        env: JobEnv,
        *,
        flush_points: int = FLUSH_POINTS,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        retry_base_s: float = RETRY_BASE_S,
        retry_max_s: float = RETRY_MAX_S,
        retry_deadline_s: float = RETRY_DEADLINE_S,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        register_atexit: bool = True,
    ):
        self.env = env
        self.online = env.online
        self.flush_points = flush_points
        self.flush_interval_s = flush_interval_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.retry_deadline_s = retry_deadline_s
        self.request_timeout_s = request_timeout_s
        self.result_recorded = False
        self._closed = False
        self._buf: list[dict] = []
        self._buf_lock = threading.Lock()  # guards _buf
        self._send_lock = threading.RLock()  # one batch in flight at a time, in order
        self._nonfinite: dict[str, int] = {}
        self._bg_error: BaseException | None = None
        self._file = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        if self.online:
            self._opener = urllib.request.build_opener(_NoRedirect)
            trial = urllib.parse.quote(env.trial_id or "", safe="")
            self._base = f"{env.ingest_url}/trials/{trial}"
            self._thread = threading.Thread(target=self._flush_loop, name="ladder-metrics", daemon=True)
            self._thread.start()
        else:
            env.output_dir.mkdir(parents=True, exist_ok=True)
            # Append: a resumed attempt continues the same file.
            self._file = open(env.output_dir / "metrics.jsonl", "a", encoding="utf-8")
        if register_atexit:
            # Points still buffered when the interpreter exits (normal end, sys.exit) get sent.
            atexit.register(self._atexit_close)

    # -- logging ---------------------------------------------------------------

    def log(self, name: str, step: int, value: float) -> None:
        self.log_many(step, {name: value})

    def log_many(self, step: int, values: Mapping[str, Any]) -> None:
        self._check_usable()
        step = self._check_step(step)
        points = []
        for name, value in values.items():
            self._check_name(name)
            v = self._check_value(name, value)
            if not math.isfinite(v):
                self._warn_nonfinite(name, step, v)
                continue
            points.append({"name": name, "step": step, "value": v})
        if not points:
            return
        if self._file is not None:
            self._file.write("".join(json.dumps(p, allow_nan=False) + "\n" for p in points))
            self._file.flush()  # visible to a tailing reader, and survives a SIGKILL mostly
            return
        with self._buf_lock:
            self._buf.extend(points)
            full = len(self._buf) >= self.flush_points
        if full:
            self.flush()

    @staticmethod
    def _check_step(step: Any) -> int:
        if isinstance(step, bool):
            raise TypeError("metric step must be an int, got bool")
        try:
            step = operator.index(step)  # int, numpy ints; not floats
        except TypeError:
            raise TypeError(f"metric step must be an int, got {type(step).__name__}") from None
        if step < 0 or step > MAX_STEP:
            raise ValueError(f"metric step must be in 0..{MAX_STEP}, got {step}")
        return step

    @staticmethod
    def _check_name(name: Any) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"metric name must be a non-empty str, got {name!r}")
        if len(name) > MAX_NAME_LENGTH:
            raise ValueError(f"metric name must be at most {MAX_NAME_LENGTH} characters, got {len(name)}: {name[:40]!r}...")
        if "\x00" in name:
            raise ValueError(f"metric name must not contain a NUL character: {name!r}")

    @staticmethod
    def _check_value(name: str, value: Any) -> float:
        if isinstance(value, (bool, str, bytes)):
            raise TypeError(f"metric '{name}' value must be a number, got {type(value).__name__}")
        try:
            return float(value)  # float, int, numpy scalars, 0-d tensors
        except (TypeError, ValueError):
            raise TypeError(f"metric '{name}' value must be a number, got {type(value).__name__}") from None

    def _warn_nonfinite(self, name: str, step: int, value: float) -> None:
        n = self._nonfinite.get(name, 0) + 1
        self._nonfinite[name] = n
        if n <= WARN_NONFINITE_PER_NAME:
            more = " (further ones for this name are dropped silently)" if n == WARN_NONFINITE_PER_NAME else ""
            _warn(f"dropped non-finite metric '{name}' at step {step}: {value} (JSON cannot carry it){more}")

    # -- result ----------------------------------------------------------------

    def result(self, metrics: Mapping[str, Any], config: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> None:
        """Record the final result. Points logged so far are flushed first, so a recorded
        result always comes with all of its points."""
        self._check_usable()
        clean: dict[str, float] = {}
        for name, value in metrics.items():
            self._check_name(name)
            v = self._check_value(name, value)
            if math.isfinite(v):
                clean[name] = v
            else:
                _warn(f"dropped non-finite result metric '{name}': {v} (JSON cannot carry it)")
        body = {"metrics": clean, "config": dict(config), "meta": dict(meta or {})}
        json.dumps(body, allow_nan=False)  # fail before sending anything if config/meta is not JSON
        self.flush()
        if self.online:
            self._post("/result", body)
        else:
            atomic_write_json(self.env.output_dir / "result.json", body)
        self.result_recorded = True

    # -- flushing --------------------------------------------------------------

    def flush(self, deadline_s: float | None = None) -> None:
        """Send every buffered point now. Raises IngestError when the endpoint refuses them."""
        self._raise_bg_error()
        self._flush(deadline_s)

    def _flush(self, deadline_s: float | None = None) -> None:
        if self._file is not None:
            self._file.flush()
            return
        with self._send_lock:
            while True:
                with self._buf_lock:
                    batch = self._buf[: self.flush_points]
                if not batch:
                    return
                self._post("/metrics", {"points": batch}, deadline_s)
                with self._buf_lock:
                    # Only now drop them: a batch that failed stays buffered for the next flush.
                    del self._buf[: len(batch)]

    def _flush_loop(self) -> None:
        while not self._wake.wait(self.flush_interval_s):
            try:
                self._flush()
            except BaseException as e:  # handed to the main thread at its next call
                self._bg_error = e
                return

    def _raise_bg_error(self) -> None:
        if self._bg_error is not None:
            err, self._bg_error = self._bg_error, None
            raise err

    def _check_usable(self) -> None:
        if self._closed:
            raise RuntimeError("MetricsClient is closed")
        self._raise_bg_error()

    # -- HTTP ------------------------------------------------------------------

    def _post(self, path: str, body: Mapping[str, Any], deadline_s: float | None = None) -> None:
        data = json.dumps(body, allow_nan=False).encode("utf-8")
        url = self._base + path
        headers = {"Content-Type": "application/json"}
        if self.env.ingest_token:
            headers["Authorization"] = f"Bearer {self.env.ingest_token}"
        start = time.monotonic()
        deadline = start + (self.retry_deadline_s if deadline_s is None else deadline_s)
        delay = self.retry_base_s
        tries = 0
        while True:
            tries += 1
            retry_after = 0.0
            try:
                req = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with self._opener.open(req, timeout=self.request_timeout_s) as resp:
                    resp.read()
                return
            except urllib.error.HTTPError as e:
                text = _read_body(e)
                if e.code != 429 and e.code < 500:
                    # 4xx: the request itself is wrong (bad body, bad or expired token, unknown
                    # trial) or this attempt may no longer write (409: the trial finished or a
                    # newer attempt runs). Sending it again cannot help: stop now, not in a minute.
                    raise IngestError(_refusal(path, e.code, text), e.code, text) from None
                last = f"HTTP {e.code}: {text}"
                retry_after = _retry_after(e)
            except (urllib.error.URLError, OSError) as e:  # refused, reset, timeout, DNS
                reason = getattr(e, "reason", e)
                last = f"{type(e).__name__}: {reason}"
            # Full jitter in [delay/2, delay]: many trials hitting one restarted API spread out.
            sleep = max(delay * random.uniform(0.5, 1.0), min(retry_after, self.retry_max_s))
            now = time.monotonic()
            if now + sleep > deadline:
                raise IngestError(
                    f"POST {path} gave up after {tries} tries in {now - start:.1f}s; last error: {last}"
                )
            _warn(f"POST {path} failed ({last}); retry {tries} in {sleep:.2f}s")
            time.sleep(sleep)
            delay = min(delay * 2, self.retry_max_s)

    # -- closing ---------------------------------------------------------------

    def close(self, deadline_s: float | None = None) -> None:
        """Flush what is left and release the file / background thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._atexit_close)
        if self._thread is not None:
            self._wake.set()
            self._thread.join()
        try:
            self._raise_bg_error()
            self._flush(deadline_s)
        finally:
            if self._file is not None:
                self._file.close()

    def _atexit_close(self) -> None:
        try:
            self.close()
        except Exception as e:
            _warn(f"could not flush metrics at exit: {e}")

    def __enter__(self) -> "MetricsClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _read_body(e: urllib.error.HTTPError) -> str:
    try:
        return e.read(500).decode("utf-8", "replace").strip()
    except Exception:
        return ""


def _refusal(path: str, status: int, text: str) -> str:
    """One clear line: the endpoint's own message (its {"error": ...}), not the raw JSON."""
    message = text
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            message = parsed["error"]
    except ValueError:
        pass
    hint = " (this attempt may no longer write)" if status == 409 else ""
    return f"ingest refused POST {path} with HTTP {status}{hint}: {message or 'no message'}; not retried"


def _retry_after(e: urllib.error.HTTPError) -> float:
    try:
        return max(0.0, float(e.headers.get("Retry-After", "0")))
    except (TypeError, ValueError):
        return 0.0  # an HTTP-date form: ignore, use our own backoff
