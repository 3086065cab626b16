"""The Premiere bridge against a real daemon over a real WebSocket on 127.0.0.1."""

from __future__ import annotations

import json
import time
from fractions import Fraction
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from edidub_engine.client import Client
from edidub_engine.media import probe_video
from plugins.premiere_bridge.convert import MediaInfo, plan_dub
from plugins.premiere_bridge.timing import TICKS_PER_SECOND, rate_from_timebase, ticks_to_frames

from bridge_helpers import TIMEBASE, BridgeThread, Panel, adapt_message, dub_message, free_port, take


def test_ticks_and_timebases_give_exact_rates_and_frames():
    assert TIMEBASE == {"23.976": 10594584000, "29.97": 8475667200}
    assert rate_from_timebase("10594584000") == Fraction(24000, 1001)
    assert rate_from_timebase("8475667200") == Fraction(30000, 1001)
    assert rate_from_timebase("10584000000") == 24 and rate_from_timebase("10160640000") == 25
    # a sequence starting at 01:00:00:00 (NDF): the zero point is 86400 frames at 23.976, 108000 at 29.97
    assert ticks_to_frames(86400 * 10594584000, Fraction(24000, 1001)) == 86400
    assert ticks_to_frames(108000 * 8475667200, Fraction(30000, 1001)) == 108000
    assert ticks_to_frames(TICKS_PER_SECOND, Fraction(30000, 1001)) == Fraction(30000, 1001)  # one second is not whole frames


@pytest.mark.parametrize("rate_name, zero_frames", [("23.976", 86400), ("29.97", 108000)])
def test_plan_places_the_shot_where_premiere_has_it(rate_name, zero_frames, tmp_path):
    rate = rate_from_timebase(TIMEBASE[rate_name])
    message = dub_message(tmp_path / "a.mov", tmp_path / "fr.wav", rate_name, request_id="r1", record=(1000, 1024),
                          source_in=300, zero_frames=zero_frames, track_index=2, dub_track_index=3)
    plan = plan_dub(message, media_info=lambda path: MediaInfo(rate, 5000))
    (shot,) = plan.shots
    assert (shot.request.source.start_frame, shot.request.source.end_frame, shot.request.source.rate) == (300, 324, rate)
    assert (shot.record_start_frame, shot.record_end_frame) == (zero_frames + 1000, zero_frames + 1024)
    assert shot.place_ticks == str(1000 * TIMEBASE[rate_name]) and shot.track_index == 2
    assert shot.request.record["video_track_index"] == 3 and shot.request.record["audio_track_index"] == 3
    (segment,) = shot.request.dub_audio
    assert segment.start_s == pytest.approx(float(10 / rate), abs=1e-6) and segment.offset_s == 0
    assert segment.duration_s == pytest.approx(float(24 / rate), abs=1e-6)


def test_plan_gives_a_two_shots_faces_the_lines_of_their_own_tracks(tmp_path):
    """The panel's Second face: the dub track is face 0's, the second track face 1's, in one request (issue 32)."""
    import copy

    rate = rate_from_timebase(TIMEBASE["23.976"])
    message = dub_message(tmp_path / "two.mov", tmp_path / "anna.wav", "23.976", request_id="r3", record=(1000, 1024),
                          source_in=300, zero_frames=86400, track_index=0, dub_track_index=1)
    second = copy.deepcopy(message["dub_track"])
    second["index"], second["name"] = 2, "FR bob"
    for clip in second["clips"]:
        clip["path"] = str(tmp_path / "bob.wav")
    message["face_tracks"] = [{"face": "0", **message["dub_track"]}, {"face": "1", **second}]
    (shot,) = plan_dub(message, media_info=lambda path: MediaInfo(rate, 5000)).shots
    assert shot.request.dub_audio == () and [line.face for line in shot.request.lines] == ["0", "1"]
    assert [Path(line.dub_audio[0].path).name for line in shot.request.lines] == ["anna.wav", "bob.wav"]
    message["face_tracks"][1]["face"] = "left of frame"
    with pytest.raises(Exception, match="face"):
        plan_dub(message, media_info=lambda path: MediaInfo(rate, 5000))


def test_plan_skips_a_speed_change_and_refuses_bad_ticks(tmp_path):
    rate = Fraction(24000, 1001)
    message = dub_message(tmp_path / "a.mov", tmp_path / "fr.wav", "23.976", request_id="r2", record=(0, 24), source_in=0, zero_frames=0)
    message["shots"][0]["out"] = str(48 * TIMEBASE["23.976"])  # 48 source frames in 24 record frames: 200 %
    plan = plan_dub(message, media_info=lambda path: MediaInfo(rate, 5000))
    assert plan.shots == [] and plan.skipped[0]["reason"] == "time_effect"
    message["shots"][0]["start"] = "12.5"
    with pytest.raises(Exception, match="tick count"):
        plan_dub(message, media_info=lambda path: MediaInfo(rate, 5000))


def test_dub_from_23976_and_2997_sequences_renders_the_right_frames(bridge, media, daemon):
    panel = Panel(bridge.url, bridge.token)
    assert panel.welcome["op"] == "welcome" and panel.welcome["daemon"]["ok"], panel.welcome
    cases = {"23.976": (86400, (100, 112), 20), "29.97": (108000, (200, 212), 30)}
    accepted = {}
    for rate_name, (zero, record, source_in) in cases.items():
        panel.send(dub_message(media[rate_name], media["dub"], rate_name, request_id=f"ntsc{rate_name.replace('.', '')}",
                               record=record, source_in=source_in, zero_frames=zero))
        reply = panel.wait_for("accepted", "error", timeout=60)
        assert reply["op"] == "accepted", reply
        (job,) = reply["jobs"]
        assert job["source_frames"] == [source_in, source_in + 12]
        assert job["record"] == [zero + record[0], zero + record[1]]
        assert job["place"] == {"ticks": str(record[0] * TIMEBASE[rate_name]), "video_track_index": 1, "audio_track_index": 1}
        accepted[job["job_id"]] = rate_name
    seen: list = []
    results = {}
    while len(results) < 2:
        message = panel.wait_for("done", "failed", "cancelled", timeout=600, seen=seen)
        assert message["op"] == "done", message
        results[message["job_id"]] = message
        panel.send({"op": "ack", "job_id": message["job_id"]})
    assert any(m["op"] == "progress" and m["state"] == "running" and m["frames_total"] for m in seen), "progress was pushed"
    for job_id, rate_name in accepted.items():
        done = results[job_id]
        info = probe_video(done["path"])
        expected_rate = Fraction(24000, 1001) if rate_name == "23.976" else Fraction(30000, 1001)
        assert info.frame_count == 12 and info.rate == expected_rate and Fraction(done["rate"]) == expected_rate
        assert done["frames"] == [0, 12] and done["place"]["ticks"] == accepted_place(rate_name, cases)
        source = probe_video(media[rate_name])
        assert done["timecode"] == source.timecode_at(cases[rate_name][2])
    panel.close()


def accepted_place(rate_name, cases):
    return str(cases[rate_name][1][0] * TIMEBASE[rate_name])


def test_a_bad_token_is_refused(bridge):
    for first in ({"op": "hello", "token": "not-the-token"}, {"op": "dub", "token": bridge.token}, "plain text"):
        with connect(bridge.url, open_timeout=10) as ws:
            ws.send(first if isinstance(first, str) else json.dumps(first))
            reply = json.loads(ws.recv(timeout=10))
            assert reply["op"] == "error" and reply["code"] == "AUTH_FAILED" and "token" in reply["message"]
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd.code == 4401
    panel = Panel(bridge.url, bridge.token)  # the right one still gets in
    assert panel.welcome["op"] == "welcome"
    panel.close()


def test_a_daemon_that_is_down_gives_a_clear_error(media):
    endpoint = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    with BridgeThread(daemon_endpoint=endpoint, hello_timeout_s=1.0, request_timeout_s=1.5) as bridge:
        panel = Panel(bridge.url, bridge.token)
        daemon = panel.welcome["daemon"]
        assert daemon["ok"] is False and daemon["code"] == "DAEMON_DOWN"
        assert endpoint in daemon["message"] and "edidub serve" in daemon["hint"]
        panel.send(dub_message(media["23.976"], media["dub"], "23.976", request_id="down1", record=(0, 12), source_in=0, zero_frames=0))
        reply = panel.wait_for("error", "accepted", timeout=30)
        assert reply["op"] == "error" and reply["code"] == "DAEMON_DOWN" and reply["request_id"] == "down1"
        assert "no EdiDub daemon answered" in reply["message"] and "edidub serve" in reply["hint"]
        panel.close()


def test_a_disconnect_mid_job_keeps_the_result_for_the_reconnecting_panel(bridge, media, daemon):
    panel = Panel(bridge.url, bridge.token)
    session = panel.session
    panel.send(dub_message(media["29.97"], media["dub"], "29.97", request_id="away1", record=(40, 52), source_in=10, zero_frames=0))
    accepted = panel.wait_for("accepted", timeout=60)
    (job,) = accepted["jobs"]
    panel.close()  # the editor closes the panel while the shot renders
    with Client(daemon.request_endpoint) as client:
        assert not client.status(job["job_id"]).state.terminal, "the panel left before the job finished"
        deadline = time.monotonic() + 600
        while not client.status(job["job_id"]).state.terminal:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    time.sleep(1.0)  # the bridge's watcher sees the end while no panel is connected

    again = Panel(bridge.url, bridge.token, session=session)
    assert again.session == session
    assert [j["job_id"] for j in again.welcome["jobs"]] == [job["job_id"]]
    done = again.wait_for("done", "failed", timeout=30)
    assert done["op"] == "done" and done["job_id"] == job["job_id"]
    assert probe_video(done["path"]).frame_count == 12 and done["place"]["ticks"] == str(40 * TIMEBASE["29.97"])
    again.send({"op": "ack", "job_id": job["job_id"]})
    again.close()

    third = Panel(bridge.url, bridge.token, session=session)  # acked: not delivered a second time
    assert third.welcome["jobs"] == []
    third.close()


def test_plan_adapt_takes_the_source_frames_each_clip_shows(tmp_path):
    from plugins.premiere_bridge.convert import plan_adapt

    tb = TIMEBASE["29.97"]
    rates = {"a.mov": MediaInfo(Fraction(25), 250), "b.mov": MediaInfo(Fraction(30000, 1001), 90)}
    info = lambda path: rates[Path(path).name]
    clips = [take(tmp_path / "a.mov", rate=Fraction(25), source=(40, 140), record_start=0, timebase=tb, name="ANNA_1"),
             take(tmp_path / "a.mov", rate=Fraction(25), source=(40, 140), record_start=500, timebase=tb, name="ANNA_1b"),  # cut in twice
             take(tmp_path / "b.mov", rate=Fraction(30000, 1001), source=(10, 200), record_start=900, timebase=tb, name="ANNA_2"),
             take(tmp_path / "b.mov", rate=Fraction(30000, 1001), source=(0, 30), record_start=1200, timebase=tb, name="ANNA_3")]
    plan = plan_adapt(adapt_message(" ANNA ", clips, request_id="p1", steps=5), media_info=info)
    assert plan.name == "ANNA" and (plan.steps, plan.minutes, plan.validate_every) == (5, None, None)
    # frames [in, out) at the media's own rate, clamped to the media's length; a take cut in twice is sent once
    assert plan.clips() == [{"path": str(tmp_path / "a.mov"), "start_frame": 40, "end_frame": 140},
                            {"path": str(tmp_path / "b.mov"), "start_frame": 10, "end_frame": 90}]
    assert [(s["clip"], s["message"]) for s in plan.skipped] == [("ANNA_3", "30 frames, fewer than the 75 an adaptation needs")]
    with pytest.raises(Exception, match="no take to adapt on .ANNA_3: 30 frames"):
        plan_adapt(adapt_message("ANNA", clips[3:], request_id="p2"), media_info=info)
    with pytest.raises(Exception, match="name the actor"):
        plan_adapt(adapt_message("  ", clips, request_id="p3"), media_info=info)
    with pytest.raises(Exception, match="steps must be a positive whole number"):
        plan_adapt(adapt_message("ANNA", clips, request_id="p4", steps=0), media_info=info)


def test_adapt_to_actor_sends_the_takes_and_its_cancel_stops_the_job(bridge, media, daemon):
    from edidub_engine.models.bundle import DEFAULT_BUNDLE

    panel = Panel(bridge.url, bridge.token)
    assert DEFAULT_BUNDLE in panel.welcome["daemon"]["models"]
    tb = TIMEBASE["23.976"]
    takes = [take(media["grid"], rate=Fraction(25), source=(0, 75), record_start=100, timebase=tb, name="ANNA_t1"),
             take(media["23.976"], rate=Fraction(24000, 1001), source=(4, 44), record_start=200, timebase=tb, name="ANNA_t2")]
    # refused with what to do: no name; a name the daemon already serves (the daemon's own refusal and hint)
    panel.send(adapt_message("", takes, request_id="ad0", steps=2))
    refused = panel.wait_for("error", "adapt_accepted", timeout=30)
    assert refused["op"] == "error" and refused["request_id"] == "ad0" and "name the actor" in refused["message"], refused
    panel.send(adapt_message(DEFAULT_BUNDLE, takes, request_id="ad1", steps=2))
    refused = panel.wait_for("error", "adapt_accepted", timeout=30)
    assert refused["op"] == "error" and refused["request_id"] == "ad1" and refused["code"] == "OUTPUT_EXISTS", refused
    assert "already served" in refused["message"] and "another name" in refused["hint"]

    panel.send(adapt_message("ANNA", takes, request_id="ad2", steps=2, validate_every=2))
    accepted = panel.wait_for("adapt_accepted", "error", timeout=60)
    assert accepted["op"] == "adapt_accepted" and accepted["request_id"] == "ad2", accepted
    assert [(t["name"], t["start_frame"], t["end_frame"]) for t in accepted["takes"]] == [("ANNA_t1", 0, 75)]
    assert [(s["clip"], s["message"]) for s in accepted["skipped"]] == [("ANNA_t2", "40 frames, fewer than the 75 an adaptation needs")]
    assert accepted["budget"] == {"steps": 2, "minutes": None, "validate_every": 2} and accepted["job"]["kind"] == "adapt"
    job_id = accepted["job"]["job_id"]
    request = daemon.store.get(job_id).request["adapt"]  # what the daemon was asked
    assert request["clips"] == [{"path": str(media["grid"].resolve()), "start_frame": 0, "end_frame": 75}]
    assert (request["name"], request["steps"], request["validate_every"]) == ("ANNA", 2, 2)
    # the panel's Cancel reaches the adapt job (the panel test runs one to its end and dubs with the new model)
    panel.send({"op": "cancel", "request_id": "c1", "job_ids": [job_id]})
    seen: list = []
    ended = panel.wait_for("done", "failed", "cancelled", timeout=600, seen=seen)
    assert ended["op"] == "cancelled" and ended["job_id"] == job_id, ended
    assert not Path(request["out"]).exists()  # no half-made bundle
    panel.send({"op": "ack", "job_id": job_id})
    panel.close()
