import pickle

from conftest import job_env, run_job, write_config

from ladder_jobs.checkpoint import CheckpointStore, load_latest_checkpoint, save_checkpoint


def test_keeps_newest_two_atomically(tmp_path):
    store = CheckpointStore(tmp_path / "c")
    assert store.load_latest() is None  # missing dir: fresh start
    for step in (10, 20, 30):
        store.save({"step": step}, step)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["ckpt-00000020.json", "ckpt-00000030.json"]
    assert store.load_latest() == {"step": 30}


def test_falls_back_when_newest_is_unreadable(tmp_path, capsys):
    store = CheckpointStore(tmp_path)
    store.save({"step": 1}, 1)
    (tmp_path / "ckpt-00000002.json").write_text('{"step": 2')  # torn by something else
    assert store.load_latest() == {"step": 1}
    assert "ckpt-00000002.json" in capsys.readouterr().err


def test_custom_format(tmp_path):
    # How a torch kind plugs in torch.save / torch.load: same interface, file objects.
    store = CheckpointStore(tmp_path, suffix=".pkl", save=pickle.dump, load=pickle.load)
    store.save({"weights": b"\x00\x01"}, 5)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-00000005.pkl"]
    assert store.load_latest() == {"weights": b"\x00\x01"}
    assert CheckpointStore(tmp_path).load_latest() is None  # a .json store ignores .pkl files


def test_module_functions_use_env_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LADDER_CHECKPOINT_DIR", str(tmp_path / "env-ckpt"))
    save_checkpoint({"a": 1}, 3)
    assert (tmp_path / "env-ckpt" / "ckpt-00000003.json").exists()
    assert load_latest_checkpoint() == {"a": 1}


def test_checkpoint_of_another_config_is_refused(tmp_path):
    env = job_env(tmp_path)
    assert run_job(["run", "--kind", "synthetic", "--config", str(write_config(tmp_path, {"steps": 5}))], env).returncode == 0
    r = run_job(["run", "--kind", "synthetic", "--config", str(write_config(tmp_path, {"steps": 5, "seed": 1}))], env)
    assert r.returncode == 2 and "another kind or config" in r.stderr
