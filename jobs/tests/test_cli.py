import signal

import pytest
from conftest import write_config

from ladder_jobs import cli, kinds


@pytest.fixture
def restore_signals():
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def test_no_result_is_not_success(tmp_path, monkeypatch, capsys, restore_signals):
    monkeypatch.setitem(kinds.KINDS, "noresult", "fake_kinds")
    monkeypatch.setenv("LADDER_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("LADDER_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    code = cli.main(["run", "--kind", "noresult", "--config", str(write_config(tmp_path, {}))])
    assert code == 1
    assert "returned without recording a result" in capsys.readouterr().err
    assert (tmp_path / "out" / "metrics.jsonl").read_text().count("\n") == 1  # points still flushed


def test_unavailable_kind_still_listed(monkeypatch, capsys):
    monkeypatch.setitem(kinds.KINDS, "needs_missing_dep", "no_such_module_for_ladder_tests")
    assert cli.main(["kinds"]) == 0
    out = capsys.readouterr().out
    assert "synthetic" in out and "needs_missing_dep  (unavailable:" in out
