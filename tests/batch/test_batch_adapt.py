"""``edidub batch --adapt``: an actor's shots are dubbed with a bundle adapted on that actor's takes in the cut,
made once and reused by the next language's batch (real adaptation on a tiny budget, real renders)."""

from __future__ import annotations

import json

import opentimelineio as otio
import pytest

from batch_helpers import DUB, OPTIONS, _rt, _tr, footage

from edidub_engine.batch import BatchConfig, run_batch, state_path_for
from edidub_engine.batch.adaptation import ActorBundle, adapted_cache_dir, assign_bundles
from edidub_engine.errors import InvalidArgumentError
from edidub_engine.shot import DubOptions


def _cut(path):
    """V1: Anna's 75-frame take (no line under it), then a shot of Anna and one of Bob, each with a French line."""
    tl = otio.schema.Timeline(name="two actors", global_start_time=_rt(90000))
    v1 = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for name, media, start, frames in (("ANNA_take1", "grid_bbaf2n.mpg", 0, 75), ("ANNA_sh010", "grid_bbaf2n.mpg", 10, 16),
                                       ("BOB_sh020", "grid_brbk7n.mpg", 20, 16)):
        ref = otio.schema.ExternalReference(target_url=str(footage(media)), available_range=_tr(0, 75))
        v1.append(otio.schema.Clip(name=name, media_reference=ref, source_range=_tr(start, frames)))
    dub = otio.schema.Track(name="FR dialogue", kind=otio.schema.TrackKind.Audio)
    dub.append(otio.schema.Gap(source_range=_tr(0, 77)))
    for k, at in enumerate((0, 16)):
        ref = otio.schema.ExternalReference(target_url=str(footage(DUB)), available_range=_tr(0, 171))
        dub.append(otio.schema.Clip(name=f"FR line {k}", media_reference=ref, source_range=_tr(25 * k, 12)))
        if k == 0:
            dub.append(otio.schema.Gap(source_range=_tr(0, 4)))
    tl.tracks.extend([v1, dub])
    otio.adapters.write_to_file(tl, str(path))
    return path


def test_an_actors_shots_are_dubbed_with_a_bundle_adapted_once_and_reused_for_the_next_language(starter_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cut = _cut(tmp_path / "cut.otio")

    def config(language):
        return BatchConfig(timeline=cut, dub_track="FR dialogue", picture_tracks=["V1"], language=language, models=str(starter_bundle),
                           codec="ffv1", options=DubOptions(**OPTIONS), no_cache=True, quiet=True, mode="local",
                           output=tmp_path / f"cut.{language}.otio", adapt=["anna_*"], adapt_steps=2)

    first = run_batch(config("FR"))
    assert sorted(first.summary.dubbed) == ["V1_001_ANNA_sh010", "V1_002_BOB_sh020"]
    [bundle] = list(adapted_cache_dir().iterdir())
    assert bundle.name.startswith("actor-anna-") and str(adapted_cache_dir()).startswith(str(tmp_path / "cache"))
    card = json.loads((bundle / "model_card.json").read_text(encoding="utf-8"))["adaptation"]
    assert [c["train_frames"] for c in card["clips"]] == [[0, 50]] and "own footage" in card["made_from"]
    state = json.loads(state_path_for(first.output).read_text(encoding="utf-8"))["shots"]
    models = {shot_id: entry["clip"]["model"]["name"] for shot_id, entry in state.items()}
    assert models == {"V1_001_ANNA_sh010": bundle.name, "V1_002_BOB_sh020": "edidub-starter"}

    made = bundle.stat().st_mtime_ns
    import edidub_engine.training.adapt as adapt_module

    monkeypatch.setattr(adapt_module, "adapt_bundle", lambda *a, **k: pytest.fail("the second language adapted again"))
    second = run_batch(config("DE"))
    assert sorted(second.summary.dubbed) == sorted(first.summary.dubbed) and bundle.stat().st_mtime_ns == made
    assert list(adapted_cache_dir().iterdir()) == [bundle]


def test_through_the_daemon_the_adapt_job_makes_the_bundle_once_and_the_shots_name_it(tmp_path, capsys):
    """The real `edidub serve`: the batch runs the daemon's adapt job, dubs Anna's shot with the bundle it serves, and the
    next language's batch finds it served and adapts nothing."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from edidub_engine.client import Client

    cut, out = _cut(tmp_path / "cut.otio"), tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "EDIDUB_MODELS": "", "XDG_DATA_HOME": str(tmp_path / "data")}
    daemon = subprocess.Popen([sys.executable, "-m", "edidub_engine", "serve", "--port", "0", "--store", str(tmp_path / "jobs.sqlite3"),
                               "--device", "cpu", "--media-root", str(footage(DUB).parent), "--media-root", str(out), "-q"],
                              cwd=Path(__file__).resolve().parents[2], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = json.loads(daemon.stdout.readline() or "{}")
        assert "requests" in ready, "edidub serve did not start"

        def config(language):
            return BatchConfig(timeline=cut, dub_track="FR dialogue", picture_tracks=["V1"], language=language, codec="ffv1",
                               options=DubOptions(**OPTIONS), mode="daemon", daemon=ready["requests"], output=out / f"cut.{language}.otio",
                               adapt=["anna_*"], adapt_steps=2)

        first = run_batch(config("FR"))
        assert sorted(first.summary.dubbed) == ["V1_001_ANNA_sh010", "V1_002_BOB_sh020"]
        with Client(ready["requests"], timeout_s=60) as client:
            adapted = [m for m in client.models() if m.name.startswith("actor-anna-")]
        assert len(adapted) == 1 and not Path(adapted[0].path).is_relative_to(out)  # in the daemon's adapted folder
        state = json.loads(state_path_for(first.output).read_text(encoding="utf-8"))["shots"]
        assert {shot_id: entry["clip"]["model"]["name"] for shot_id, entry in state.items()} == {
            "V1_001_ANNA_sh010": adapted[0].name, "V1_002_BOB_sh020": "edidub-starter"}
        capsys.readouterr()
        second = run_batch(config("DE"))
        assert sorted(second.summary.dubbed) == sorted(first.summary.dubbed)
        said = capsys.readouterr().err
        assert f"the daemon already serves {adapted[0].name}; reusing it" in said, said
    finally:
        daemon.terminate()
        daemon.wait(60)


def test_a_pattern_that_names_no_shot_is_refused():
    from edidub_engine.shot import ShotRequest

    shot = ShotRequest.from_dict({"shot_id": "s", "source": {"path": "/a.mov", "start_frame": 0, "end_frame": 10},
                                  "dub_audio": [{"path": "/b.wav"}], "record": {"clip": "BOB_sh020"}})
    [kept] = assign_bundles([shot], [ActorBundle("BOB_*", "actor-bob", ())])
    assert kept.options.model == "actor-bob"
    with pytest.raises(InvalidArgumentError, match="ANNA_\\*.*matches no shot"):
        assign_bundles([shot], [ActorBundle("ANNA_*", "actor-anna", ())])
