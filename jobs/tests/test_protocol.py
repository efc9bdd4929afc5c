from pathlib import Path

import pytest

from ladder_jobs.protocol import ProtocolError, read_env


def test_defaults_when_unset():
    env = read_env({})
    assert env.online is False
    assert env.attempt == 1
    assert env.output_dir == Path("ladder-output")
    assert env.checkpoint_dir == Path("ladder-output/checkpoints")


def test_reads_everything_and_hides_token():
    env = read_env(
        {
            "LADDER_TRIAL_ID": "t1",
            "LADDER_INGEST_URL": "http://api:8080/ingest/",
            "LADDER_INGEST_TOKEN": "sekrit",
            "LADDER_CHECKPOINT_DIR": "/c",
            "LADDER_OUTPUT_DIR": "/o",
            "LADDER_ATTEMPT": "3",
        }
    )
    assert env.online and env.ingest_url == "http://api:8080/ingest"  # trailing slash dropped
    assert (env.trial_id, env.attempt, env.checkpoint_dir, env.output_dir) == ("t1", 3, Path("/c"), Path("/o"))
    assert env.ingest_token == "sekrit" and "sekrit" not in repr(env)


def test_empty_url_is_offline():
    assert read_env({"LADDER_INGEST_URL": ""}).online is False


@pytest.mark.parametrize("attempt", ["x", "0", "-1", "1.5"])
def test_bad_attempt(attempt):
    with pytest.raises(ProtocolError, match="LADDER_ATTEMPT"):
        read_env({"LADDER_ATTEMPT": attempt})
