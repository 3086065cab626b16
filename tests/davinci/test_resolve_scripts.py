"""The Resolve scripts, unchanged, against the documented-API double and a real daemon."""

from __future__ import annotations

import ast
import json
import os
import re
import sys
import subprocess
from pathlib import Path

import pytest

import resolve_double as rd
from resolve_media import CLIP_FRAMES, RATES, REPO, need
from resolve_api import ALL_METHODS, DOCUMENTED, DOCUMENTED_CONSTANTS, UI_MANAGER

RECORD_OFFSET = 48  # the shot starts two seconds-ish into the timeline
DUR = 16  # frames of the clip on the timeline (of CLIP_FRAMES + 4 in the file)
LEFT = 3  # file-relative source in


def build(media_root, dub_audio, rate="24", *, version="21.0.4", audio=True, speed=1.0, select=True, media=None):
    """A project with one timeline: V1 holds the talking clip, A2 the dub speech under it."""
    resolve = rd.Resolve(version)
    tl = rd.new_timeline(resolve, "Episode 101", "Reel 1", rate, start_timecode=RATES[rate][1])
    pool = resolve.GetProjectManager().GetCurrentProject().GetMediaPool()
    (mpi,) = pool.ImportMedia([str(media or media_root / RATES[rate][2])])
    rec = tl.GetStartFrame() + RECORD_OFFSET
    item = tl._add_video(1, mpi, rec, DUR, left=LEFT, speed=speed)
    if audio:
        tl._add_audio(2, str(dub_audio), rec - 5, DUR + 10, left=0)
    if select:
        tl._selected = [item]
    tl._playhead = rec + 2
    return resolve, tl, item


@pytest.mark.parametrize("rate", list(RATES))
def test_dub_shot_lands_on_the_new_track_at_the_original_record_frames(rate, media_root, dub_audio, daemon, run_script, monkeypatch):
    from edidub_engine.media import probe_video

    monkeypatch.setenv("EDIDUB_DAEMON", daemon.request_endpoint)
    resolve, tl, original = build(media_root, dub_audio, rate)
    assert tl.GetStartFrame() == {"24": 86400, "23.976": 86400, "29.97 DF": 107892}[rate]
    report, out = run_script("Dub Shot", resolve)
    assert report is not None and report.ok, out
    (placed,) = report.placed
    assert tl.GetTrackCount("video") == 2 and tl.GetTrackName("video", 2) == "EdiDub"
    (dub,) = tl.GetItemListInTrack("video", 2)
    assert (dub.GetStart(), dub.GetDuration()) == (original.GetStart(), original.GetDuration())
    assert tl.GetItemListInTrack("video", 1) == [original]  # the original is untouched
    # the rendered file holds exactly the clip's source frames, with their timecode
    info = probe_video(placed.path)
    assert info.frame_count == DUR and info.rate == RATES[rate][0]
    assert info.start_timecode == probe_video(media_root / RATES[rate][2]).timecode_at(LEFT)
    # it was imported into the EdiDub bin, and a marker carries the job id
    root = resolve.GetProjectManager().GetCurrentProject().GetMediaPool().GetRootFolder()
    (edidub_bin,) = [f for f in root.GetSubFolderList() if f.GetName() == "EdiDub"]
    assert [c.GetClipProperty("File Path") for c in edidub_bin.GetClipList()] == [placed.path]
    marker = tl.GetMarkerByCustomData(f"edidub:{placed.job_id}")
    assert marker and marker["duration"] == DUR and placed.job_id in marker["note"]
    assert float(original.GetStart() - tl.GetStartFrame()) in tl.GetMarkers()
    # the settings were remembered for the project
    saved = json.loads((Path(os.environ["XDG_CONFIG_HOME"]) / "edidub" / "resolve-projects.json").read_text())
    assert saved["Episode 101"]["quality"] == "standard"


def test_dub_timeline_places_every_rendered_clip(media_root, dub_audio, daemon, run_script, monkeypatch):
    monkeypatch.setenv("EDIDUB_DAEMON", daemon.request_endpoint)
    resolve, tl, first = build(media_root, dub_audio, "24", version="20.2.0")  # no GetSelectedClips: not needed here
    (mpi,) = resolve.GetProjectManager().GetCurrentProject().GetMediaPool().ImportMedia([str(media_root / RATES["24"][2])])
    second = tl._add_video(1, mpi, first.GetEnd() + 30, 10, left=8)
    tl._add_audio(2, str(dub_audio), second.GetStart(), 10, left=20)
    silent = tl._add_video(1, mpi, second.GetEnd() + 40, 8, left=0)  # no dub under it: skipped and listed
    report, out = run_script("Dub Timeline", resolve)
    assert report is not None and report.ok, out
    assert len(report.placed) == 2 and len(report.skipped) == 1 and "no dub speech" in report.skipped[0]
    dubbed = tl.GetItemListInTrack("video", 2)
    assert [(d.GetStart(), d.GetDuration()) for d in dubbed] == [(first.GetStart(), DUR), (second.GetStart(), 10)]
    assert silent in tl.GetItemListInTrack("video", 1)


def test_no_daemon_running(media_root, dub_audio, run_script, monkeypatch):
    monkeypatch.setenv("EDIDUB_DAEMON", "tcp://127.0.0.1:9")  # nothing listens there
    from plugins.davinci import resolve_bridge as rb

    rb.save_settings("Episode 101", rb.ProjectSettings(daemon_timeout_s=1.0))
    resolve, tl, _ = build(media_root, dub_audio)
    report, out = run_script("Dub Shot", resolve)
    assert report is None
    assert "no EdiDub daemon is running" in out and "edidub serve --media-root" in out
    assert tl.GetTrackCount("video") == 1  # nothing was changed


@pytest.mark.parametrize("case, needle", [
    ("no_selection", "no clip is selected"),
    ("no_audio", "there is no dub audio under clip"),
    ("offline", "is offline"),
    ("speed", "has a speed change"),
])
def test_clear_messages(case, needle, media_root, dub_audio, run_script, tmp_path):
    kw = {}
    if case == "no_selection":
        kw = {"select": False, "version": "21.0.3"}
    elif case == "no_audio":
        kw = {"audio": False}
    elif case == "speed":
        kw = {"speed": 2.0}
    elif case == "offline":
        moved = tmp_path / "moved.mov"
        moved.write_bytes((media_root / RATES["24"][2]).read_bytes())
        kw = {"media": moved}
    resolve, tl, item = build(media_root, dub_audio, **kw)
    if case == "no_selection":
        tl._playhead = tl.GetStartFrame()  # nothing under the playhead either
    if case == "offline":
        os.remove(kw["media"])
    report, out = run_script("Dub Shot", resolve)
    assert report is None and needle in out, out
    assert "What to do:" in out
    assert tl.GetTrackCount("video") == 1


def test_playhead_finds_the_clip_on_older_resolve(media_root, dub_audio, run_script, monkeypatch):
    """Before 21.0.4 there is no GetSelectedClips: the clip under the playhead is the shot (read as far as submitting)."""
    monkeypatch.setenv("EDIDUB_DAEMON", "tcp://127.0.0.1:9")
    from plugins.davinci import resolve_bridge as rb

    rb.save_settings("Episode 101", rb.ProjectSettings(daemon_timeout_s=0.5))
    resolve, tl, item = build(media_root, dub_audio, "29.97 DF", version="19.1.0", select=False)
    report, out = run_script("Dub Shot", resolve)
    assert "no EdiDub daemon" in out  # got past finding the clip and its dub audio


def test_installer_writes_into_home_and_uninstall_leaves_nothing(home):
    from plugins.davinci.install import SCRIPT_NAMES, scripts_folder

    env = dict(os.environ, HOME=str(home), PYTHONPATH=str(REPO))
    code = "import argparse,sys; from plugins.davinci.install import add_install_parser; p=argparse.ArgumentParser(prog='edidub'); " \
           "s=p.add_subparsers(); add_install_parser(s); a=p.parse_args(sys.argv[1:]); sys.exit(a.func(a))"
    run = lambda *args: subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)
    done = run("install", "resolve", "--user")
    assert done.returncode == 0, done.stderr
    folder = scripts_folder(user=True, platform="linux", home=str(home)) / "Edit"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*SCRIPT_NAMES, ".edidub-install.json"])
    assert "EdiDub Adapt to Actor.py" in SCRIPT_NAMES
    for name in SCRIPT_NAMES:
        text = (folder / name).read_text()
        assert repr(str(REPO)) in text and "pyzmq==" in text and "msgpack==" in text
        ast.parse(text)
    assert 'run_menu_script("adapt_to_actor"' in (folder / "EdiDub Adapt to Actor.py").read_text()
    gone = run("install", "resolve", "--user", "--uninstall")
    assert gone.returncode == 0, gone.stderr
    assert list(home.iterdir()) == []


def test_scripts_folder_for_every_os():
    from plugins.davinci.install import scripts_folder

    bmd = Path("Blackmagic Design") / "DaVinci Resolve"
    assert scripts_folder(user=False, platform="darwin") == Path("/Library/Application Support") / bmd / "Fusion" / "Scripts"
    assert scripts_folder(user=True, platform="darwin", home="/Users/ed") == Path("/Users/ed/Library/Application Support") / bmd / "Fusion" / "Scripts"
    assert scripts_folder(user=False, platform="win32", env={"PROGRAMDATA": "C:\\ProgramData"}) == Path("C:\\ProgramData") / bmd / "Fusion" / "Scripts"
    assert scripts_folder(user=True, platform="win32", env={"APPDATA": "C:\\Users\\ed\\AppData\\Roaming"}) == \
        Path("C:\\Users\\ed\\AppData\\Roaming") / bmd / "Support" / "Fusion" / "Scripts"
    assert scripts_folder(user=False, platform="linux") == Path("/opt/resolve/Fusion/Scripts")
    assert scripts_folder(user=True, platform="linux", home="/home/ed") == Path("/home/ed/.local/share/DaVinciResolve/Fusion/Scripts")


def _camel_calls(path: Path) -> set[str]:
    """Every ``x.Name(...)`` / ``x.NAME`` with a Resolve-style name in a file, except on OTIO and the engine's own modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and re.fullmatch(r"[A-Z][A-Za-z0-9_]+", node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in ("otio", "JobState", "Path", "re", "argparse", "metadata", "tempfile"):
                continue
            names.add(node.attr)
    return names


def test_scripts_call_only_the_documented_api():
    files = [*(REPO / "plugins" / "davinci").glob("*.py"), *(REPO / "plugins" / "davinci" / "scripts").glob("*.py")]
    assert {"resolve_bridge.py", "reading.py", "placement.py", "progress.py"} <= {f.name for f in files}
    used = set().union(*(_camel_calls(f) for f in files))
    unknown = sorted(used - ALL_METHODS - DOCUMENTED_CONSTANTS - UI_MANAGER - {"On", "Clicked", "Close", "Timeout", "Text"}
                     - {"EdiDubMessage", "EdiDubProgress", "EdiDubTick", "EdiDubAsk", "Cancel", "OK"})
    assert not unknown, f"not in the documented Resolve API list: {unknown}"
    assert {"GetSelectedClips", "GetCurrentVideoItem", "AppendToTimeline", "ImportMedia", "SetCurrentFolder", "AddTrack",
            "AddMarker", "Export", "EXPORT_OTIO", "GetLeftOffset", "GetMarkInOut", "LineEdit"} <= used


def test_the_double_offers_only_documented_methods():
    for cls in (rd.Resolve, rd.ProjectManager, rd.Project, rd.Folder, rd.MediaPoolItem, rd.MediaPool, rd.TimelineItem, rd.Timeline21):
        public = {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n)) and not n.isupper()}
        assert public <= DOCUMENTED[cls._kind], (cls.__name__, sorted(public - DOCUMENTED[cls._kind]))
    assert {n for n in dir(rd.Resolve) if n.isupper()} <= DOCUMENTED_CONSTANTS


def test_the_bridge_imports_nothing_heavy():
    code = "import sys; import plugins.davinci.resolve_bridge, edidub_engine.client; " \
           "print(sorted(m for m in ('torch','numpy','av','cv2','mediapipe') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_playhead_under_an_earlier_dub_on_a_drop_frame_timeline(media_root, dub_audio, run_script, monkeypatch):
    """Issue 19: drop frame is Resolve's own setting (timelineDropFrameTimecode), not part of the rate text; read as
    non-drop, a playhead timecode an hour in is 108 frames off and the clip under it is not found."""
    monkeypatch.setenv("EDIDUB_DAEMON", "tcp://127.0.0.1:9")
    from plugins.davinci import resolve_bridge as rb

    rb.save_settings("Episode 101", rb.ProjectSettings(daemon_timeout_s=0.5))
    resolve = rd.Resolve("19.1.0")
    tl = rd.new_timeline(resolve, "Episode 101", "Reel 1", "29.97 DF", start_timecode=RATES["29.97 DF"][1], video_tracks=2)
    assert tl.GetSetting("timelineFrameRate") == "29.97" and tl.GetSetting("timelineDropFrameTimecode") == "1"
    pool = resolve.GetProjectManager().GetCurrentProject().GetMediaPool()
    (mpi,) = pool.ImportMedia([str(media_root / RATES["29.97 DF"][2])])
    rec = tl.GetStartFrame() + RECORD_OFFSET
    tl._add_video(1, mpi, rec, DUR, left=LEFT)
    tl._names["video"][1] = rb.TRACK_NAME  # an earlier dub on the EdiDub track covers the playhead
    tl._add_video(2, mpi, rec, DUR, left=LEFT)
    tl._add_audio(2, str(dub_audio), rec - 5, DUR + 10, left=0)
    tl._playhead = rec + 2
    report, out = run_script("Dub Shot", resolve)
    assert "no EdiDub daemon" in out and "no clip is selected" not in out  # found the V1 clip under the playhead


@pytest.mark.parametrize("off_by", [1, -1])
def test_a_short_clip_with_its_source_end_rounded_by_one_frame_is_not_a_speed_change(media_root, dub_audio, off_by):
    """Resolve rounds GetSourceEndFrame/GetSourceEndTime to a whole source frame; on an 8-frame clip one frame is 12 %,
    which the speed test read as a retime and refused the shot. A real 2x stays a speed change."""
    from fractions import Fraction

    from plugins.davinci import resolve_bridge as rb

    resolve, tl, item = build(media_root, dub_audio)
    item._duration = 8
    end = item.GetSourceEndFrame() + off_by
    item.GetSourceEndFrame = lambda: end  # the double, rounded as Resolve rounds
    item.GetSourceEndTime = lambda: float(end / item._src_rate())
    rate = Fraction(24)
    assert rb._speed(item, rate, item.GetMediaPoolItem(), rate) == 1.0
    del item.GetSourceEndTime  # older Resolve: frames only
    assert rb._speed(item, rate, item.GetMediaPoolItem(), rate) == 1.0
    fast = build(media_root, dub_audio, speed=2.0)[2]
    fast._duration = 8
    assert rb._speed(fast, rate, fast.GetMediaPoolItem(), rate) == pytest.approx(2.0)


def test_a_menu_script_reaches_resolve_through_bmd(monkeypatch, capsys):
    """Without a ``resolve`` global the script asks ``bmd.scriptapp("Resolve")``, then DaVinciResolveScript;
    with neither answering, the editor is told where to run it."""
    from plugins.davinci import resolve_bridge as rb

    asked = []

    class Bmd:
        def scriptapp(self, name):
            asked.append(name)

    monkeypatch.setitem(sys.modules, "DaVinciResolveScript", None)  # not importable here
    assert rb.run_menu_script("dub_shot", {"bmd": Bmd(), "fusion": None}) is None
    assert asked == ["Resolve"] and "could not reach DaVinci Resolve" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# Adapt to Actor


def takes_timeline(version="21.0.4", *, clips, rate="25", video_tracks=1):
    """A 25 fps project whose V1 holds ``clips``: ``(name, media, left, duration, selected[, speed])`` one after another."""
    resolve = rd.Resolve(version)
    tl = rd.new_timeline(resolve, "Episode 101", "Reel 1", rate, start_timecode="01:00:00:00", video_tracks=video_tracks)
    pool = resolve.GetProjectManager().GetCurrentProject().GetMediaPool()
    items, rec = [], tl.GetStartFrame() + RECORD_OFFSET
    for name, media, left, duration, selected, *speed in clips:
        (mpi,) = pool.ImportMedia([str(media)])
        item = tl._add_video(1, mpi, rec, duration, left=left, speed=speed[0] if speed else 1.0)
        item._name = name
        if selected:
            tl._selected.append(item)
        items.append(item)
        rec += duration + 10
    return resolve, tl, items


def _adapt_settings(**kw):
    from plugins.davinci import resolve_bridge as rb

    rb.save_settings("Episode 101", rb.ProjectSettings(**{"adapt_steps": 2, "adapt_minutes": None, "adapt_validate_every": 2, **kw}))


def _saved(project="Episode 101"):
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "edidub" / "resolve-projects.json"
    return json.loads(path.read_text())[project] if path.exists() else {}


def test_adapt_to_actor_sends_the_selected_takes_and_the_next_dub_shot_uses_the_new_model(media_root, dub_audio, daemon, run_script, monkeypatch):
    from edidub_engine.client import Client

    monkeypatch.setenv("EDIDUB_DAEMON", daemon.request_endpoint)
    grid = need("grid_bbaf2n.mpg")  # 75 frames of one speaker with his own sound: the shortest take adaptation takes
    resolve, tl, (take, short, other) = takes_timeline(clips=[
        ("ANNA_sc12_t3", grid, 0, 75, True), ("ANNA_sc14_t1", grid, 10, 40, True), ("BOB_sc3", grid, 0, 75, False)])
    _adapt_settings(output_folder=str(media_root))
    report, out = run_script("Adapt to Actor", resolve)
    assert report is not None and report.ok, out
    # the daemon got the one take long enough, as its media file and the source frames the timeline shows
    request = daemon.store.get(report.job_id).request["adapt"]
    assert request["clips"] == [{"path": str(grid.resolve()), "start_frame": 0, "end_frame": 75}]
    assert (request["name"], request["steps"], request["minutes"], request["validate_every"]) == ("ANNA", 2, None, 2)
    assert report.skipped == ["'ANNA_sc14_t1': 40 frames, fewer than the 75 an adaptation needs"]
    # the bundle is made and served; the editor is told, and the project now names it
    assert report.name == "ANNA" and report.bundle["name"] == "ANNA" and report.bundle["steps"] == 2
    assert Path(report.bundle["path"]).is_dir()
    with Client(daemon.request_endpoint) as client:
        assert "ANNA" in [m.name for m in client.models()]
    assert "Model 'ANNA' is ready: 1 take(s), 75 frames, 2 training steps" in out and "now dub with it" in out, out
    assert "left out 'ANNA_sc14_t1': 40 frames" in out
    assert _saved()["model"] == "ANNA"

    # the next Dub Shot in the project dubs with it (options.model), and says so on the marker
    shot = tl._add_video(1, short.GetMediaPoolItem(), other.GetEnd() + 20, DUR, left=LEFT)
    tl._add_audio(2, str(dub_audio), shot.GetStart() - 5, DUR + 10, left=0)
    tl._selected = [shot]
    report, out = run_script("Dub Shot", resolve)
    assert report is not None and report.ok, out
    (placed,) = report.placed
    assert daemon.store.get(placed.job_id).request["options"]["model"] == "ANNA"
    assert placed.model == "ANNA" and "model ANNA" in out
    assert "model ANNA" in tl.GetMarkerByCustomData(f"edidub:{placed.job_id}")["note"]


@pytest.mark.parametrize("found", ["selected", "in_out", "playhead"])
def test_adapt_to_actor_reads_each_take_as_its_source_frames(found, media_root):
    """The takes: the selection (21.0.4+), else the clips between In and Out on the picture track, else the clip
    under the playhead; each as the source frames the timeline shows (left offset, a 2x clip's double length)."""
    from plugins.davinci.adapt import Take, _take_items, _takes
    from plugins.davinci.reading import _context

    long = need("latentsync_demo1.mp4")  # 250 frames at 25 fps
    version = {"selected": "21.0.4", "in_out": "20.2.0", "playhead": "19.1.0"}[found]
    resolve, tl, (a, fast, later) = takes_timeline(version, video_tracks=2, clips=[
        ("ANNA_1", long, 40, 100, True), ("ANNA_2", long, 10, 50, True, 2.0), ("ANNA_3", long, 0, 90, False)])
    title = rd.TimelineItem(tl, None, later.GetEnd() + 5, 80, 0, name="Title")  # selected, but no media
    tl._video[0].append(title)
    tl._names["video"][1] = "EdiDub"  # an earlier dub over the first take: never a take
    tl._video[1].append(rd.TimelineItem(tl, a.GetMediaPoolItem(), a.GetStart(), 100, 40))
    tl._selected += [title, tl._video[1][0]]
    if found == "in_out":
        tl._marks = {"video": {"in": a.GetStart() - tl.GetStartFrame(), "out": fast.GetEnd() - tl.GetStartFrame() + 2}}
    tl._playhead = a.GetStart() + 3
    ctx = _context(resolve)
    items, how = _take_items(ctx)
    takes, skipped, _names = _takes(ctx, items)
    path = str(long)
    expected = {
        "selected": [Take("ANNA_1", path, 40, 140), Take("ANNA_2", path, 10, 110)],
        "in_out": [Take("ANNA_1", path, 40, 140), Take("ANNA_2", path, 10, 110)],
        "playhead": [Take("ANNA_1", path, 40, 140)],
    }[found]
    assert takes == expected, (how, takes)
    assert ("no media file" in " ".join(skipped)) == (found == "selected")
    assert {"selected": "3 selected clip(s)", "in_out": "between In and Out on V1", "playhead": "under the playhead"}[found] in how


@pytest.mark.parametrize("case, needle", [
    ("nothing", "no clip is selected"),
    ("short", "no take to adapt on ('ANNA_1': 40 frames"),
    ("offline", "is offline"),
    ("two_actors", "the takes' clip names do not name one actor (A001, B002"),
    ("daemon_down", "no EdiDub daemon is running"),
])
def test_adapt_to_actor_clear_messages(case, needle, run_script, monkeypatch, tmp_path):
    monkeypatch.setenv("EDIDUB_DAEMON", "tcp://127.0.0.1:9")  # nothing listens there
    _adapt_settings(daemon_timeout_s=0.5)
    grid = need("grid_bbaf2n.mpg")
    clips = [("ANNA_1", grid, 0, 75, True)]
    version = "21.0.4"
    if case == "nothing":
        version, clips = "20.2.0", [("ANNA_1", grid, 0, 75, False)]
    elif case == "short":
        clips = [("ANNA_1", grid, 5, 40, True)]
    elif case == "offline":
        moved = tmp_path / "ANNA_1.mpg"
        moved.write_bytes(grid.read_bytes())
        clips = [("ANNA_1", moved, 0, 75, True)]
    elif case == "two_actors":
        clips = [("A001_C003", grid, 0, 75, True), ("B002_C001", grid, 0, 75, True)]
    resolve, tl, _ = takes_timeline(version, clips=clips)
    tl._playhead = tl.GetStartFrame()  # over nothing
    if case == "offline":
        os.remove(moved)
    report, out = run_script("Adapt to Actor", resolve)
    assert report is None and needle in out, out
    assert "What to do:" in out
    assert _saved().get("model") == ""  # the project's model is unchanged


def test_adapt_to_actor_shows_the_daemons_refusal_and_a_dub_names_a_model_it_lost(media_root, dub_audio, daemon, run_script,
                                                                                  monkeypatch, tmp_path):
    monkeypatch.setenv("EDIDUB_DAEMON", daemon.request_endpoint)
    outside = tmp_path / "ANNA_t9.mpg"  # not under the daemon's --media-root folders
    outside.write_bytes(need("grid_bbaf2n.mpg").read_bytes())
    resolve, tl, _ = takes_timeline(clips=[("ANNA_t9", outside, 0, 75, True)])
    _adapt_settings()
    report, out = run_script("Adapt to Actor", resolve)
    assert report is None and "take 'ANNA_t9': " in out and "is outside the daemon's media roots" in out, out
    assert "What to do: put the media under one of the roots the daemon was started with (--media-root)" in out
    assert _saved()["model"] == ""

    # a project whose model the daemon does not serve (made by another daemon, say): Dub Shot says where the name comes from
    from plugins.davinci import resolve_bridge as rb

    rb.save_settings("Episode 101", rb.ProjectSettings(model="gone-actor"))
    resolve, tl, _ = build(media_root, dub_audio)
    report, out = run_script("Dub Shot", resolve)
    assert report is None and "'gone-actor' is not served" in out and '"model" setting' in out, out
    assert 'set "model" to ""' in out and tl.GetTrackCount("video") == 1


def test_an_adapted_model_takes_a_free_name():
    from plugins.davinci.adapt import actor_proposal, bundle_name
    from plugins.davinci.errors import ResolveScriptError
    from plugins.davinci.settings import ProjectSettings

    assert bundle_name("ANNA", set()) == "ANNA"
    assert bundle_name("ANNA", {"ANNA"}) == "ANNA-v2" and bundle_name("ANNA", {"ANNA", "ANNA-v2"}) == "ANNA-v3"
    assert bundle_name("Anna Lee (FR)", set()) == "Anna-Lee-FR"
    with pytest.raises(ResolveScriptError):
        bundle_name("…", set())
    names = ["anna_sc1", "ANNA-sc2.mov"]
    assert actor_proposal(ProjectSettings(), names) == "anna"
    assert actor_proposal(ProjectSettings(), [*names, "BOB_1"]) == ""
    assert actor_proposal(ProjectSettings(actor="Anna Lee"), ["BOB_1"]) == "Anna Lee"


def test_the_projects_edit_strength_goes_with_each_dub(media_root, dub_audio, daemon, run_script, monkeypatch):
    """The project's `strength` (how far a mouth may move from the original's) is the request's options.strength;
    a hand-edited value out of range falls back to the default, 1."""
    from plugins.davinci import resolve_bridge as rb
    from plugins.davinci.settings import ProjectSettings

    monkeypatch.setenv("EDIDUB_DAEMON", daemon.request_endpoint)
    rb.save_settings("Episode 101", rb.ProjectSettings(strength=0.6))
    resolve, tl, _ = build(media_root, dub_audio)
    report, out = run_script("Dub Shot", resolve)
    assert report is not None and report.ok, out
    (placed,) = report.placed
    assert daemon.store.get(placed.job_id).request["options"]["strength"] == 0.6
    assert _saved()["strength"] == 0.6
    assert ProjectSettings.from_dict({"strength": 3}).strength == 1.0 and ProjectSettings.from_dict({"strength": "x"}).strength == 1.0


def test_a_two_shots_faces_each_get_the_line_on_their_own_track(media_root, dub_audio, daemon, run_script, monkeypatch):
    """The project's face_tracks (face → audio track): Dub Shot sends every face its own line in one request, and the
    dubbed clip lands as for one face. A track the timeline lacks is said with where the setting lives."""
    import av

    from plugins.davinci import resolve_bridge as rb

    two = media_root / "two_24.mov"
    if not two.exists():  # the shared split-screen interview at this timeline's rate
        with av.open(str(need("twoface_interview.mp4"))) as src, av.open(str(two), "w") as out:
            stream = out.add_stream("libx264", rate=24)
            stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
            for i, frame in enumerate(src.decode(video=0)):
                if i >= LEFT + DUR + 5:
                    break
                picture = av.VideoFrame.from_ndarray(frame.to_ndarray(width=640, height=360, format="rgb24"), format="rgb24")
                picture.pts = i
                for packet in stream.encode(picture):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    monkeypatch.setenv("EDIDUB_DAEMON", daemon.request_endpoint)
    rb.save_settings("Episode 101", rb.ProjectSettings(face_tracks={"0": 2, "1": 3}))
    resolve, tl, original = build(media_root, dub_audio, media=two)
    assert tl.AddTrack("audio", "mono")  # A3: the second face's lines, added as an editor does
    tl._add_audio(3, str(need("dub_de_german1.wav")), original.GetStart(), DUR, left=0)
    report, out = run_script("Dub Shot", resolve)
    assert report is not None and report.ok, out
    (placed,) = report.placed
    request = daemon.store.get(placed.job_id).request
    assert [line["face"] for line in request["lines"]] == ["0", "1"] and request["dub_audio"] == []
    assert Path(request["lines"][1]["dub_audio"][0]["path"]).name == "dub_de_german1.wav"
    rb.save_settings("Episode 101", rb.ProjectSettings(face_tracks={"0": 2, "1": 7}))
    report, out = run_script("Dub Shot", resolve)
    assert report is None and "A7" in out and "face_tracks" in out, out
