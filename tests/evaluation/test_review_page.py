"""The review page in headless Chromium: ratings and an approval survive a reload and reach the CSV and OTIO exports;
only the user who started it gets in (a token in a file only they can read, as Jupyter's notebook server does)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edidub_engine.evaluation.bench import write_batch_manifest
from edidub_engine.evaluation.review import ReviewServer

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _prores_original(folder: Path, source: Path) -> Path:
    """A ProRes 422 HQ original (what a browser cannot play), written from 30 frames of a shared clip with its sound."""
    from edidub_engine.media import ClipWriter, iter_frames, load_audio_for_frames, probe_video

    info, out = probe_video(source), folder / "prores_original.mov"
    sound = load_audio_for_frames(info, 0, 30, sample_rate_hz=48000)
    with ClipWriter(out, width=info.width, height=info.height, rate=info.rate, audio=sound, audio_sample_rate_hz=48000) as w:
        for _, frame in iter_frames(info, 0, 30):
            w.write(frame)
    return out


@pytest.fixture(autouse=True)
def _own_data_home(tmp_path, monkeypatch):
    """Each test's token files go to a folder of its own, never to the user's ~/.local/share/edidub/review."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))


@pytest.fixture
def batch(tmp_path, footage_path):
    shots = [
        {"shot_id": "grid-a", "original": str(footage_path("grid_bbaf2n.mpg")), "dubbed": str(footage_path("retalking_face2.mp4")),
         "start_frame": 0, "end_frame": 50, "rate": "25/1", "timecode": "00:00:00:00", "warnings": ["small face: a test warning"]},
        {"shot_id": "grid b/2", "original": str(footage_path("grid_lbbc2a.mpg")), "dubbed": str(footage_path("retalking_face4.mp4")),
         "start_frame": 10, "end_frame": 60, "rate": "25/1", "timecode": "01:00:00:10", "warnings": []},
        {"shot_id": "prores", "original": str(_prores_original(tmp_path, footage_path("grid_brbk7n.mpg"))),
         "dubbed": str(footage_path("retalking_face2.mp4")), "start_frame": 5, "end_frame": 30, "rate": "25/1",
         "timecode": "00:00:00:05", "warnings": []},
    ]
    write_batch_manifest(tmp_path, shots, title="review test batch")
    return tmp_path


@pytest.fixture
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()) and not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip(f"headless browser test needs Debian's chromium and chromedriver ({CHROMIUM}, {CHROMEDRIVER}); CI installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,1000", "--mute-audio"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER if Path(CHROMEDRIVER).exists() else shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def _status(url: str, *, data: bytes | None = None, headers: dict | None = None) -> int:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


def _base(server) -> str:
    """The address without its token (what a stranger can find by scanning loopback ports)."""
    host, port = server.httpd.server_address[:2]
    return f"http://{host}:{port}/"


def test_rating_and_approval_persist_and_export(batch, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    with ReviewServer(batch, port=0) as server:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith(f"/?token={server.token}")
        wait = WebDriverWait(browser, 30)
        browser.get(_base(server))  # without the token: refused, and told where the address is
        assert "only its own user" in browser.find_element(By.TAG_NAME, "body").text
        browser.get(server.url)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        card = browser.find_element(By.ID, "shot-1")  # the shot whose id needs URL quoting
        assert "grid b/2" in card.text
        browser.find_element(By.ID, "reviewer").send_keys("Ana Souza")
        Select(card.find_element(By.CSS_SELECTOR, ".rating-sync")).select_by_value("7")
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#shot-1 .saved"), "saved"))
        Select(card.find_element(By.CSS_SELECTOR, ".rating-naturalness")).select_by_value("9")
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#shot-1 .saved").text == "saved")
        card.find_element(By.CSS_SELECTOR, "button.approve").click()
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#shot-1 .verdict"), "approved"))
        browser.find_element(By.CSS_SELECTOR, "#shot-0 button.reject").click()
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#shot-0 .verdict"), "rejected"))

        browser.refresh()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        card = browser.find_element(By.ID, "shot-1")
        assert Select(card.find_element(By.CSS_SELECTOR, ".rating-sync")).first_selected_option.get_attribute("value") == "7"
        assert Select(card.find_element(By.CSS_SELECTOR, ".rating-naturalness")).first_selected_option.get_attribute("value") == "9"
        assert card.find_element(By.CSS_SELECTOR, ".verdict").text == "approved"
        assert browser.find_element(By.CSS_SELECTOR, "#shot-0 .verdict").text == "rejected"
        assert "small face" in browser.find_element(By.ID, "shot-0").text
        # MPEG-1 and ProRes originals play: each is served as an H.264 proxy of the shot's own range
        for i, seconds in ((0, 2.0), (1, 2.0), (2, 1.0)):
            original = browser.find_element(By.CSS_SELECTOR, f"#shot-{i} video.original")
            assert f"/media/{i}/original?token=" in original.get_attribute("src")
            wait.until(lambda d: d.execute_script("return arguments[0].readyState", original) >= 1)
            duration = browser.execute_script("return arguments[0].duration", original)
            assert abs(duration - seconds) < 0.1, (i, duration)
            assert browser.execute_script("return arguments[0].muted", original)  # the dub is heard, not both
        assert "(H.264 proxy)" in browser.find_element(By.ID, "shot-2").text

        shot_png = tmp_path / "review_page.png"
        browser.save_screenshot(str(shot_png))
        print(f"\nreview page screenshot: {shot_png}")
        assert shot_png.stat().st_size > 0

        exports = {e.get_attribute("id"): e.get_attribute("href") for e in browser.find_elements(By.CSS_SELECTOR, "a[id^=export]")}
        rows = list(csv.DictReader(io.StringIO(_get(exports["export-csv"]).decode())))  # the page's own links carry the token
        by_id = {r["shot_id"]: r for r in rows}
        assert (by_id["grid b/2"]["sync"], by_id["grid b/2"]["naturalness"], by_id["grid b/2"]["verdict"]) == ("7", "9", "approved")
        assert by_id["grid-a"]["verdict"] == "rejected" and by_id["grid-a"]["sync"] == ""
        assert by_id["grid b/2"]["reviewer"] == "Ana Souza"

        import opentimelineio as otio

        timeline = otio.adapters.read_from_string(_get(exports["export-otio"]).decode(), "otio_json")
        clips = {c.name: c for c in timeline.find_clips()}
        marker = clips["grid b/2"].markers[0]
        assert marker.color == "GREEN" and marker.name.startswith("APPROVED")
        assert marker.metadata["edidub"]["sync"] == 7 and marker.metadata["edidub"]["naturalness"] == 9
        assert clips["grid-a"].markers[0].color == "RED"
        assert clips["grid b/2"].source_range.start_time.to_timecode() == "01:00:00:10"

        # media are served with byte ranges (what a <video> element asks for)
        req = urllib.request.Request(server.base_url + "media/0/original", headers={"Range": "bytes=0-99", "Authorization": f"token {server.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 206 and len(r.read()) == 100


def test_bad_writes_are_refused(batch):
    with ReviewServer(batch, port=0) as server:
        def post(path, body, ctype="application/json"):
            req = urllib.request.Request(server.base_url + path, data=body, method="POST",
                                         headers={"Content-Type": ctype, "Authorization": f"token {server.token}"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as err:
                return err.code, json.loads(err.read())

        assert post("api/shots/grid-a", b'{"sync": 11}')[0] == 400
        assert post("api/shots/grid-a", b'{"verdict": "maybe"}')[0] == 400
        assert post("api/shots/nope", b'{"sync": 3}')[0] == 404
        assert post("api/shots/grid-a", b"sync=3", "application/x-www-form-urlencoded")[0] == 415  # no cross-site form posts
        status, row = post("api/shots/grid-a", b'{"sync": 3}')
        assert status == 200 and row["sync"] == 3 and row["verdict"] == "pending"


ROUTES = ["", "index.html", "api/shots", "media/0/original", "media/1/dubbed", "export.csv", "export.otio"]


def test_only_the_token_in_the_owners_file_gets_in(batch):
    with ReviewServer(batch, port=0) as server:
        base = _base(server)
        for route in ROUTES:
            assert _status(base + route) == 403, route
            assert _status(base + route + "?token=" + "x" * 43) == 403, route
            assert _status(base + route, headers={"Authorization": "token " + server.token[:-1]}) == 403, route
        assert _status(base + "api/shots/grid-a", data=b'{"verdict": "approved"}') == 403
        refusal = urllib.request.Request(base + "api/shots")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(refusal, timeout=30)
        assert "?token=" in json.loads(err.value.read())["error"]  # it says what to open

        for route in ROUTES:
            assert _status(base + route + "?token=" + server.token) == 200, route
            assert _status(base + route, headers={"Authorization": "token " + server.token}) == 200, route
        assert _status(base + "api/shots/grid-a", data=b'{"verdict": "approved"}', headers={"Authorization": "token " + server.token}) == 200

        token_file = server.token_file
        assert token_file.parent == Path(os.environ["XDG_DATA_HOME"]) / "edidub" / "review"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
        assert json.loads(token_file.read_text()) == {"url": server.url, "token": server.token, "batch_dir": str(server.batch_dir),
                                                      "pid": os.getpid()}
    assert not token_file.exists()  # the token dies with the server


_STRANGER = textwrap.dedent("""
    import json, os, sys, urllib.error, urllib.request
    base, token_file = sys.argv[1], sys.argv[2]
    readable = os.access(token_file, os.R_OK)
    def status(url, data=None):
        req = urllib.request.Request(url, data=data, method="POST" if data else "GET", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as err:
            return err.code
    out = {route: status(base + route) for route in sys.argv[3:]}
    out["post"] = status(base + "api/shots/grid-a", b'{"verdict": "rejected"}')
    print(json.dumps({"readable": readable, "statuses": out}))
""")


@pytest.mark.skipif(shutil.which("setpriv") is None or os.geteuid() != 0, reason="needs setpriv and root to run as another uid")
def test_another_user_on_the_machine_is_refused(batch, monkeypatch):
    """uid 65534 (nobody) on the same loopback: it cannot read the owner's token file, and without the token
    it neither fetches the batch's media nor posts a verdict."""
    import tempfile

    data_home = Path(tempfile.mkdtemp(prefix="edidub-review-home-"))  # outside pytest's 0700 folder: the stranger may walk there
    os.chmod(data_home, 0o755)
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    try:
        with ReviewServer(batch, port=0) as server:
            os.chmod(server.token_file.parent, 0o755)  # as if the owner had widened the folder: the file's own 0600 keeps it
            run = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", _STRANGER,
                                  _base(server), str(server.token_file), *ROUTES],
                                 capture_output=True, text=True, env={"PATH": os.environ["PATH"], "HOME": "/tmp"}, cwd="/", timeout=60)
            assert run.returncode == 0, run.stderr
            seen = json.loads(run.stdout)
            assert seen["readable"] is False
            assert seen["statuses"] == {**{route: 403 for route in ROUTES}, "post": 403}
            assert server.store.get("grid-a")["verdict"] == "pending"  # nothing the stranger sent was saved
    finally:
        shutil.rmtree(data_home, ignore_errors=True)
