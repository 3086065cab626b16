"""The panel in headless Chromium: a real local HTTP server serves it, a test double of the
``premierepro`` module stands in for Premiere, and the bridge and the daemon are real."""

from __future__ import annotations

import functools
import json
import shutil
import threading
import time
from fractions import Fraction
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edidub_engine.media import probe_video
from plugins.premiere_bridge import PANEL_DIR

from bridge_helpers import TIMEBASE, BridgeThread, take

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[test])")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists() and shutil.which(Path(path).name) is None:
            pytest.skip(f"{path} is absent: install Debian's chromium and chromium-driver to run the panel test")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=380,760"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER if Path(CHROMEDRIVER).exists() else shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def panel_url():
    """The panel folder served by a real HTTP server on 127.0.0.1."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(PANEL_DIR))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()


def wait(driver, condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(condition)
        if value:
            return value
        time.sleep(0.1)
    log = driver.execute_script("return [...document.querySelectorAll('#log li')].map(li => li.textContent)")
    raise AssertionError(f"timed out waiting for {what}; panel log: {log}")


@pytest.mark.parametrize("track_above", [True, False], ids=["V2 exists", "no track above"])
def test_dub_selected_shots_in_the_panel(browser, panel_url, bridge, media, tmp_path, track_above):
    tb = TIMEBASE["23.976"]
    zero = 86400 * tb  # the sequence starts at 01:00:00:00
    clip, dub = media["23.976"], media["dub"]
    fixture = {"sequence": {
        "name": "Reel 1 — French", "timebase": str(tb), "zero_point": str(zero),
        "video_tracks": [
            {"name": "V1", "items": [
                {"name": "grid_23976.mkv", "path": str(clip), "start": str(48 * tb), "end": str(60 * tb), "in": str(6 * tb), "out": str(18 * tb), "selected": True},
                {"name": "not selected", "path": str(clip), "start": str(100 * tb), "end": str(120 * tb), "in": "0", "out": str(20 * tb)},
            ]},
            *([{"name": "V2", "items": []}] if track_above else []),
        ],
        "audio_tracks": [
            # the linked audio half of the selected clip is selected too: the panel must ignore it
            {"name": "Original", "items": [{"name": "grid_23976.mkv", "path": str(clip), "start": str(48 * tb), "end": str(60 * tb), "in": str(6 * tb), "out": str(18 * tb), "selected": True}]},
            {"name": "French", "items": [{"name": dub.name, "path": str(dub), "start": str(40 * tb), "end": str(90 * tb), "in": "0", "out": str(50 * tb)}]},
        ],
    }}
    fake = (HERE / "fake_premierepro.js").read_text()
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                            {"source": f"window.__PPRO_FIXTURE__ = {json.dumps(fixture)};\n{fake}"})
    browser.get(panel_url)
    browser.find_element("id", "settings").click() if not browser.execute_script("return document.getElementById('settings').open") else None
    url_box, token_box = browser.find_element("id", "bridge-url"), browser.find_element("id", "bridge-token")
    url_box.clear()
    url_box.send_keys(bridge.url)
    token_box.send_keys(bridge.token)
    browser.find_element("id", "connect").click()
    wait(browser, "return document.getElementById('status').textContent === 'connected'", 30, "the panel to connect")
    wait(browser, "return document.querySelectorAll('#dub-track option').length === 2", 10, "the audio tracks")
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", "dub-track")).select_by_value("1")
    browser.find_element("id", "dub").click()

    wait(browser, "return document.querySelectorAll('#shots li').length === 1", 60, "the shot row")
    wait(browser, "const li = document.querySelector('#shots li'); return li && li.className === 'done'", 600, "the dubbed clip to be placed")
    # the bar filled (by the job's progress, or at the end: a dub of 12 frames can finish between two progress events)
    progress_seen = browser.execute_script("return document.querySelector('#shots li').dataset.maxProgress")
    shot = tmp_path / "panel.png"
    browser.save_screenshot(str(shot))
    print(f"\npanel screenshot: {shot}")

    calls = browser.execute_script("return window.__ppro.calls")
    imports = [c for c in calls if c["fn"] == "importFiles"]
    edits = [c for c in calls if c["fn"] == "executeTransaction"]
    assert len(imports) == 1 and len(edits) == 1, calls
    path = imports[0]["paths"][0]
    assert imports[0]["suppressUI"] is True and Path(path).is_file()
    assert imports[0]["targetBin"] is not None  # a ProjectItem (the root bin), as the API documents, never null
    assert probe_video(path).frame_count == 12  # the 12 selected frames, the whole clip (the dub covers it)
    # Picture only: the overwrite below lands on V2 alone and never covers the editor's dub line on A2.
    assert not probe_video(path).has_audio
    (action,) = edits[0]["actions"]
    if track_above:
        assert action["fn"] == "createOverwriteItemAction" and action["inLock"] and edits[0]["inLock"]
    else:  # Premiere adds the track for an insert past the last one; limitShift and a picture-only clip: nothing else moves
        assert action["fn"] == "createInsertProjectItemAction" and action["limitShift"] is True and action["inLock"]
    assert action["path"] == path and action["ticks"] == str(48 * tb)  # the clip's record time, zero point excluded
    assert action["videoTrackIndex"] == 1  # V2, above the source on V1
    log = browser.execute_script("return [...document.querySelectorAll('#log li')].map(li => li.textContent).join('\\n')")
    assert "source frames 6–18, record 86448–86460" in log and "on V2 at 01:00:02:00 (record frame 86448)" in log, log
    assert float(progress_seen) > 0
    # The shot's QC verdict is shown on its row (a review verdict in the warning colour).
    verdict = browser.execute_script("return document.querySelector('#shots li').dataset.qc")
    detail = browser.execute_script("return document.querySelector('#shots li .detail').textContent")
    assert verdict in ("ok", "review") and ("QC ok" in detail if verdict == "ok" else "QC: review" in detail), (verdict, detail)


def test_adapt_to_actor_in_the_panel_then_dub_with_the_new_model(browser, panel_url, daemon, media):
    """The selected takes go as one actor's; the finished model becomes the panel's Model choice and the next dub uses it."""
    from selenium.webdriver.support.ui import Select

    tb = TIMEBASE["23.976"]
    clip, dub = media["23.976"], media["dub"]
    anna = take(media["grid"], rate=Fraction(25), source=(0, 75), record_start=10, timebase=tb, name="ANNA_t1")
    fixture = {"sequence": {
        "name": "Reel 2", "timebase": str(tb), "zero_point": str(86400 * tb),
        "video_tracks": [
            {"name": "V1", "items": [
                {**{k: anna[k] for k in ("name", "path", "start", "end", "in", "out")}, "selected": True},
                {"name": "shot", "path": str(clip), "start": str(200 * tb), "end": str(212 * tb), "in": str(6 * tb), "out": str(18 * tb)},
            ]},
            {"name": "V2", "items": []},
        ],
        "audio_tracks": [
            {"name": "Original", "items": []},
            {"name": "French", "items": [{"name": dub.name, "path": str(dub), "start": str(190 * tb), "end": str(240 * tb), "in": "0", "out": str(50 * tb)}]},
        ],
    }}
    fake = (HERE / "fake_premierepro.js").read_text()
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": f"window.__PPRO_FIXTURE__ = {json.dumps(fixture)};\n{fake}"})
    with BridgeThread(daemon_endpoint=daemon.request_endpoint, adapt_steps=2, adapt_minutes=None, adapt_validate_every=2) as bridge:
        browser.get(panel_url)
        if not browser.execute_script("return document.getElementById('settings').open"):
            browser.find_element("id", "settings").click()
        browser.find_element("id", "bridge-url").clear()
        browser.find_element("id", "bridge-url").send_keys(bridge.url)
        browser.find_element("id", "bridge-token").send_keys(bridge.token)
        browser.find_element("id", "connect").click()
        wait(browser, "return document.getElementById('status').textContent === 'connected'", 30, "the panel to connect")
        assert browser.execute_script("return document.getElementById('model').value") == ""  # the daemon's default until adapted

        browser.find_element("id", "adapt").click()  # no name yet: said, nothing sent
        wait(browser, "return [...document.querySelectorAll('#log li')].some(li => li.textContent.includes('Name the actor first'))", 10,
             "the missing name to be said")
        assert browser.execute_script("return document.querySelectorAll('#shots li').length") == 0
        browser.find_element("id", "actor-name").send_keys("ANNA-panel")
        browser.find_element("id", "adapt").click()
        wait(browser, "const li = document.querySelector('#shots li'); return li && li.className === 'done'", 600, "the model to be made")
        row = browser.execute_script("const li = document.querySelector('#shots li'); return [li.querySelector('b').textContent, "
                                     "li.querySelector('.state').textContent, li.querySelector('.detail').textContent]")
        assert row[:2] == ["Adapt to ANNA-panel", "ready"] and "model ANNA-panel" in row[2] and "2 steps" in row[2], row
        assert browser.execute_script("return document.getElementById('model').value") == "ANNA-panel"
        log = browser.execute_script("return [...document.querySelectorAll('#log li')].map(li => li.textContent).join('\\n')")
        assert "on 1 take(s): ANNA_t1 frames 0–75" in log and "Model ANNA-panel is ready" in log and "dubbing now uses it" in log, log

        # the next dub names the new model
        browser.execute_script("const v = window.__PPRO_FIXTURE__.sequence.video_tracks[0].items; v[0].selected = false; v[1].selected = true;")
        wait(browser, "return document.querySelectorAll('#dub-track option').length === 2", 10, "the audio tracks")
        Select(browser.find_element("id", "dub-track")).select_by_value("1")
        # with the edit strength the editor typed (how far the mouths may move from the original's)
        strength = browser.find_element("id", "strength")
        strength.clear()
        strength.send_keys("0.8")
        browser.find_element("id", "dub").click()
        wait(browser, "return document.querySelectorAll('#shots li.done').length === 2", 600, "the dub to be placed")
        job_id, detail = browser.execute_script("const li = document.querySelectorAll('#shots li')[1]; "
                                                "return [li.dataset.jobId, li.querySelector('.detail').textContent]")
        assert daemon.store.get(job_id).request["options"]["model"] == "ANNA-panel"
        assert daemon.store.get(job_id).request["options"]["strength"] == 0.8
        assert "model ANNA-panel" in detail, detail
