"""MetricsClient, in process: offline files and online pushes to a scripted local server."""

import json
import time

import pytest
from conftest import TOKEN, read_points

from ladder_jobs.metrics import IngestError, MetricsClient
from ladder_jobs.protocol import read_env


def online_client(ingest, tmp_path, **kw):
    env = read_env(
        {
            "LADDER_INGEST_URL": ingest.url,
            "LADDER_TRIAL_ID": "trial/1",
            "LADDER_INGEST_TOKEN": TOKEN,
            "LADDER_OUTPUT_DIR": str(tmp_path / "out"),
        }
    )
    kw.setdefault("flush_interval_s", 60)  # tests flush explicitly unless they test the timer
    kw.setdefault("retry_base_s", 0.01)
    return MetricsClient(env, register_atexit=False, **kw)


def test_offline_writes_jsonl_and_result(tmp_path):
    env = read_env({"LADDER_OUTPUT_DIR": str(tmp_path / "out")})
    m = MetricsClient(env, register_atexit=False)
    m.log("loss", 1, 2.5)
    m.log_many(2, {"loss": 2.0, "acc": 1})
    m.result({"loss": 2.0}, {"steps": 2}, {"kind": "k"})
    m.close()
    assert read_points(tmp_path / "out" / "metrics.jsonl") == {("loss", 1): 2.5, ("loss", 2): 2.0, ("acc", 2): 1.0}
    assert json.loads((tmp_path / "out" / "result.json").read_text()) == {
        "metrics": {"loss": 2.0},
        "config": {"steps": 2},
        "meta": {"kind": "k"},
    }
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")] == []
    assert m.result_recorded


def test_non_finite_dropped_with_warning(tmp_path, capsys):
    env = read_env({"LADDER_OUTPUT_DIR": str(tmp_path)})
    m = MetricsClient(env, register_atexit=False)
    m.log_many(1, {"loss": float("nan"), "acc": 0.5, "grad": float("inf")})
    m.result({"loss": float("nan"), "acc": 0.5}, {}, {})
    m.close()
    assert read_points(tmp_path / "metrics.jsonl") == {("acc", 1): 0.5}
    assert json.loads((tmp_path / "result.json").read_text())["metrics"] == {"acc": 0.5}
    err = capsys.readouterr().err
    assert "non-finite metric 'loss'" in err and "non-finite metric 'grad'" in err


def test_rejects_bad_points(tmp_path):
    m = MetricsClient(read_env({"LADDER_OUTPUT_DIR": str(tmp_path)}), register_atexit=False)
    with pytest.raises(TypeError):
        m.log("loss", 1.5, 1.0)
    with pytest.raises(TypeError):
        m.log("loss", 1, "1.0")
    with pytest.raises(TypeError):
        m.log("loss", True, 1.0)
    m.close()


def test_rejects_what_the_ingest_endpoint_refuses(tmp_path):
    # The endpoint answers these with 400; caught at the call, they name the culprit at once.
    m = MetricsClient(read_env({"LADDER_OUTPUT_DIR": str(tmp_path)}), register_atexit=False)
    with pytest.raises(ValueError, match="NUL"):
        m.log("lo\x00ss", 1, 1.0)
    with pytest.raises(ValueError, match="at most 200 characters"):
        m.log("x" * 201, 1, 1.0)
    with pytest.raises(ValueError, match="step must be in"):
        m.log("loss", 2**31, 1.0)
    with pytest.raises(ValueError, match="NUL"):
        m.result({"a\x00": 1.0}, {})
    m.log("x" * 200, 2**31 - 1, 1.0)  # the limits themselves are fine
    m.close()
    assert read_points(tmp_path / "metrics.jsonl") == {("x" * 200, 2**31 - 1): 1.0}


def test_online_batches_with_auth(ingest, tmp_path):
    m = online_client(ingest, tmp_path)
    for step in range(1200):
        m.log("loss", step, step / 10)
    m.close()
    reqs = ingest.ok("/metrics")
    assert [len(r["body"]["points"]) for r in reqs] == [500, 500, 200]  # batched, max 500
    assert all(r["path"] == "/trials/trial%2F1/metrics" for r in reqs)  # trial id URL-quoted
    assert all(r["headers"]["authorization"] == f"Bearer {TOKEN}" for r in reqs)
    assert all(r["headers"]["content-type"] == "application/json" for r in reqs)
    assert ingest.delivered_points() == [{"name": "loss", "step": s, "value": s / 10} for s in range(1200)]


def test_online_flushes_on_timer(ingest, tmp_path):
    m = online_client(ingest, tmp_path, flush_interval_s=0.05)
    m.log_many(3, {"loss": 1.0, "acc": 0.5})
    deadline = time.monotonic() + 5
    while not ingest.ok("/metrics") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(ingest.delivered_points()) == 2  # arrived without flush()/close()
    m.close()


@pytest.mark.parametrize("status", [500, 503, 429])
def test_online_retries_5xx_and_429_without_loss(ingest, tmp_path, capsys, status):
    ingest.script = [status, status]
    m = online_client(ingest, tmp_path)
    for step in range(10):
        m.log("loss", step, float(step))
    m.flush()
    assert [r["status"] for r in ingest.requests] == [status, status, 200]
    assert ingest.delivered_points() == [{"name": "loss", "step": s, "value": float(s)} for s in range(10)]
    m.close()
    assert len(ingest.requests) == 3  # nothing sent twice after success
    err = capsys.readouterr().err
    assert f"HTTP {status}" in err and TOKEN not in err


def test_online_400_not_retried(ingest, tmp_path, capsys):
    ingest.script = [400]
    m = online_client(ingest, tmp_path)
    m.log("loss", 1, 1.0)
    with pytest.raises(IngestError) as e:
        m.flush()
    assert e.value.status == 400 and "scripted failure" in str(e.value)
    assert len(ingest.requests) == 1
    assert TOKEN not in str(e.value) and TOKEN not in capsys.readouterr().err


@pytest.mark.parametrize("status", [409, 401, 403, 404, 413])
def test_online_refusal_stops_at_once_with_the_servers_message(ingest, tmp_path, status):
    # 409: the trial finished or a newer attempt runs; 401: the token expired. Retrying for a
    # minute cannot help, and the message must be the endpoint's, not a JSON blob.
    ingest.script = [status] * 10
    m = online_client(ingest, tmp_path, retry_deadline_s=30)
    m.log("loss", 1, 1.0)
    t0 = time.monotonic()
    with pytest.raises(IngestError) as e:
        m.flush()
    assert time.monotonic() - t0 < 5
    assert len(ingest.requests) == 1
    assert e.value.status == status
    message = str(e.value)
    assert f"HTTP {status}" in message and "scripted failure" in message and "not retried" in message
    assert '{"error"' not in message
    assert ("may no longer write" in message) == (status == 409)
    with pytest.raises(IngestError):
        m.result({"loss": 1.0}, {})  # the result of a refused attempt is refused too, at once
    assert len(ingest.requests) == 2


def test_online_gives_up_after_deadline(ingest, tmp_path):
    ingest.script = [500] * 1000
    m = online_client(ingest, tmp_path, retry_deadline_s=0.3, retry_max_s=0.05)
    m.log("loss", 1, 1.0)
    t0 = time.monotonic()
    with pytest.raises(IngestError, match="gave up"):
        m.flush()
    assert time.monotonic() - t0 < 2
    assert len(ingest.requests) >= 3


def test_online_connection_refused_retried_then_raises(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    env = read_env({"LADDER_INGEST_URL": f"http://127.0.0.1:{port}", "LADDER_TRIAL_ID": "t"})
    m = MetricsClient(env, register_atexit=False, flush_interval_s=60, retry_base_s=0.01, retry_deadline_s=0.2)
    m.log("loss", 1, 1.0)
    with pytest.raises(IngestError, match="gave up"):
        m.flush()


def test_online_result_after_points(ingest, tmp_path):
    m = online_client(ingest, tmp_path)
    m.log("loss", 1, 3.0)
    m.result({"loss": 3.0}, {"steps": 1}, {"kind": "synthetic"})
    m.close()
    assert [r["path"].rsplit("/", 1)[1] for r in ingest.requests] == ["metrics", "result"]
    result = ingest.ok("/result")[0]
    assert result["body"] == {"metrics": {"loss": 3.0}, "config": {"steps": 1}, "meta": {"kind": "synthetic"}}
    assert result["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert not (tmp_path / "out" / "result.json").exists()  # online mode writes no files


def test_online_large_step_split_into_batches(ingest, tmp_path):
    m = online_client(ingest, tmp_path)
    m.log_many(0, {f"m{i}": float(i) for i in range(1200)})  # one call, more than one batch
    m.close()
    assert [len(r["body"]["points"]) for r in ingest.ok("/metrics")] == [500, 500, 200]
    assert [p["name"] for p in ingest.delivered_points()] == [f"m{i}" for i in range(1200)]


def test_online_refused_batch_stays_buffered(ingest, tmp_path):
    ingest.script = [400]
    m = online_client(ingest, tmp_path)
    m.log("loss", 1, 1.0)
    with pytest.raises(IngestError):
        m.flush()
    m.close()  # e.g. the token was fixed upstream: the same points go out again
    assert ingest.delivered_points() == [{"name": "loss", "step": 1, "value": 1.0}]
