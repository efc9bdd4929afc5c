"""The `video` kind's pieces: the synthetic clips, the frame samplers, the model's shapes and masks."""

import numpy as np
import pytest

from ladder_jobs.config import ConfigError, resolve_config
from ladder_jobs.kinds import video
from ladder_jobs.kinds.video import data as vd


def cfg_of(**overrides) -> dict:
    cfg, _ = resolve_config("video", video.DEFAULTS, video.PRESETS, {"preset": "xs", **overrides})
    video.validate(cfg)
    return cfg


def test_same_seed_same_clips_other_seed_other_clips():
    cfg = cfg_of(n_train=20, n_test=5)
    a, b = vd.VideoData(cfg), vd.VideoData(cfg)
    assert a.test == b.test
    ba, bb = a.train_batch(3), b.train_batch(3)
    assert np.array_equal(ba["video"], bb["video"]) and np.array_equal(ba["lengths"], bb["lengths"])
    assert not np.array_equal(a.train_batch(4)["video"], ba["video"])  # another step, another batch
    c = vd.VideoData(cfg_of(n_train=20, n_test=5, data_seed=1))
    assert [x.labels for x in c.test] != [x.labels for x in a.test]


def test_labels_match_the_motion_and_the_events():
    cfg = cfg_of()
    seen = set()
    for i in range(200):
        clip = vd.make_clip(cfg, "train", i)
        last = clip.n_native - 1
        (x0, y0), (x1, y1) = clip.position(0), clip.position(last)
        dx, dy = x1 - x0, y1 - y0
        # direction: the axis and the sign of the displacement of the rendered sprite
        expect = {(1, 0): 0, (-1, 0): 1, (0, 1): 2, (0, -1): 3}[(int(np.sign(dx)), int(np.sign(dy)))]
        assert clip.labels["direction"] == expect, (clip, dx, dy)
        # speed: the fast range starts well above the slow one, in pixels per second
        px_per_s = (abs(dx) + abs(dy)) / (last / clip.fps)
        v_top = (cfg["canvas"] - vd.SPRITE) / cfg["max_duration_s"]
        assert (px_per_s > 0.6 * v_top) == bool(clip.labels["speed"]), (px_per_s, v_top)
        # the sprite stays on the canvas
        for f in (0, last):
            x, y = clip.position(f)
            assert 0 <= x <= cfg["canvas"] - vd.SPRITE and 0 <= y <= cfg["canvas"] - vd.SPRITE
        # order and count, read back from the rendered pixels at every native frame
        frames = vd.render(clip, np.arange(clip.n_native), cfg["canvas"], 0.0)
        a_on = frames[:, 2, 2] > 0.5
        b_on = frames[:, 2, cfg["canvas"] - 3] > 0.5
        blink_on = frames[:, cfg["canvas"] - 2, cfg["canvas"] // 2] > 0.5
        sprite_covers = np.zeros(clip.n_native, bool)  # a pixel under the sprite says nothing
        for f in range(clip.n_native):
            x, y = clip.position(f)
            for py, px in ((2, 2), (2, cfg["canvas"] - 3), (cfg["canvas"] - 2, cfg["canvas"] // 2)):
                sprite_covers[f] |= x <= px < x + vd.SPRITE and y <= py < y + vd.SPRITE
        if not sprite_covers.any():
            first_a, first_b = np.argmax(a_on), np.argmax(b_on)
            assert a_on.any() and b_on.any()
            assert clip.labels["order"] == int(first_b < first_a)
            rises = int(blink_on[0]) + int(np.sum(~blink_on[:-1] & blink_on[1:]))
            assert clip.labels["count"] == rises - 1
            seen.add("pixels")
        seen.add(clip.labels["direction"])
    assert seen >= {0, 1, 2, 3, "pixels"}


def test_fps_sampling_grows_with_duration_uniform_is_fixed():
    args = dict(native_fps=8, sample_fps=2.0, max_frames=16, uniform_frames=12)
    fps_counts = [len(vd.sample_frames(n, mode="fps", **args)) for n in (32, 40, 48, 64)]
    assert fps_counts == [8, 10, 12, 16]  # one frame every 0.5 s
    assert np.array_equal(vd.sample_frames(32, mode="fps", **args), np.arange(0, 32, 4))
    assert len(vd.sample_frames(200, mode="fps", **args)) == 16  # capped, spread over the clip
    assert vd.sample_frames(200, mode="fps", **args)[-1] > 180
    for n in (32, 40, 64, 200):
        idx = vd.sample_frames(n, mode="uniform", **args)
        assert len(idx) == 12 and idx[0] >= 0 and idx[-1] < n and np.all(np.diff(idx) > 0)
    # the same clip, both samplers: video tokens per second of video constant for fps only
    cfg = cfg_of(n_train=8, n_test=64)
    d = vd.VideoData(cfg)
    short = [c for c in d.test if c.duration_s < 5]
    long = [c for c in d.test if c.duration_s > 7]
    assert short and long
    for mode, ratio_ok in (("fps", lambda r: r == pytest.approx(1.0, abs=0.15)), ("uniform", lambda r: r > 1.3)):
        s, l = d.batch(short, mode), d.batch(long, mode)
        rate = lambda b, cs: b["frames_per_video_s"] / len(cs)
        assert ratio_ok(rate(s, short) / rate(l, long)), mode
    b = d.batch(d.test[:10], "fps")
    for i, c in enumerate(d.test[:10]):  # zero padding after each clip's frames
        assert b["lengths"][i] == len(d.frames_of(c, "fps"))
        assert not b["video"][i, b["lengths"][i]:].any()


def test_fps_sampling_sees_every_event():
    cfg = cfg_of()
    for i in range(100):
        clip = vd.make_clip(cfg, "test", i)
        idx = vd.sample_frames(clip.n_native, cfg["native_fps"], "fps", cfg["sample_fps"], cfg["max_frames"], 12)
        hit = lambda s, e: bool(np.any((idx >= s) & (idx < e)))
        assert hit(*clip.event_a) and hit(*clip.event_b)
        assert all(hit(*blink) for blink in clip.blinks)
        gaps = [(e, s2) for (_, e), (s2, _) in zip(clip.blinks, clip.blinks[1:])]
        assert all(hit(*g) for g in gaps)  # two blinks never merge into one


@pytest.mark.parametrize("override,key", [({"train_sampling": "random"}, "train_sampling"),
                                          ({"resampler": "pool", "tokens_per_frame": 3}, "tokens_per_frame"),
                                          ({"n_heads": 5}, "n_heads"), ({"min_duration_s": 2.0}, "min_duration_s"),
                                          ({"canvas": 30}, "canvas"), ({"temporal": "lstm"}, "temporal")])
def test_validate_rejects(override, key):
    with pytest.raises(ConfigError, match=key):
        cfg_of(**override)


@pytest.mark.torch
@pytest.mark.parametrize("resampler,k,temporal", [("perceiver", 3, "gru"), ("perceiver", 1, "transformer"),
                                                  ("pool", 4, "transformer"), ("pool", 1, "gru")])
def test_model_shapes_and_padding_mask(resampler, k, temporal):
    import torch

    from ladder_jobs.kinds.video.model import VideoClassifier

    cfg = cfg_of(resampler=resampler, tokens_per_frame=k, temporal=temporal, d_model=32, enc_width=8, n_layers=2)
    torch.manual_seed(0)
    model = VideoClassifier(cfg, vd.TASKS).eval()
    B, T, H = 3, 6, cfg["canvas"]
    video = torch.randn(B, T, H, H)
    lengths = torch.tensor([6, 2, 4])
    tokens = model.frame_tokens(video[0])
    assert tokens.shape == (T, k, cfg["d_model"])  # tokens per frame honoured
    out = model(video, lengths)
    assert {t: o.shape for t, o in out.items()} == {t: (B, n) for t, n in vd.TASKS.items()}
    # frames past a clip's length are invisible: garbage there changes nothing
    noisy = video.clone()
    noisy[1, 2:] = 100.0
    noisy[2, 4:] = -7.0
    out2 = model(noisy, lengths)
    for t in vd.TASKS:
        assert torch.allclose(out[t], out2[t], atol=1e-5)
    # ... while a real frame does count, and each clip is classified on its own frames only
    changed = video.clone()
    changed[1, 1] = 5.0
    out3 = model(changed, lengths)
    assert not torch.allclose(out["direction"][1], out3["direction"][1])
    assert torch.allclose(out["direction"][[0, 2]], out3["direction"][[0, 2]], atol=1e-5)
    # a clip alone gives the same logits as in a padded batch
    alone = model(video[1:2, :2], lengths[1:2])
    assert torch.allclose(alone["count"], out["count"][1:2], atol=1e-5)
