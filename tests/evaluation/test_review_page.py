"""The review page in headless Chromium: ratings and an approval survive a reload and reach the CSV and OTIO exports."""

from __future__ import annotations

import csv
import io
import json
import shutil
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


def test_rating_and_approval_persist_and_export(batch, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    with ReviewServer(batch, port=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        wait = WebDriverWait(browser, 30)
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
            assert original.get_attribute("src").endswith(f"/media/{i}/original")
            wait.until(lambda d: d.execute_script("return arguments[0].readyState", original) >= 1)
            duration = browser.execute_script("return arguments[0].duration", original)
            assert abs(duration - seconds) < 0.1, (i, duration)
            assert browser.execute_script("return arguments[0].muted", original)  # the dub is heard, not both
        assert "(H.264 proxy)" in browser.find_element(By.ID, "shot-2").text

        shot_png = tmp_path / "review_page.png"
        browser.save_screenshot(str(shot_png))
        print(f"\nreview page screenshot: {shot_png}")
        assert shot_png.stat().st_size > 0

        rows = list(csv.DictReader(io.StringIO(_get(server.url + "export.csv").decode())))
        by_id = {r["shot_id"]: r for r in rows}
        assert (by_id["grid b/2"]["sync"], by_id["grid b/2"]["naturalness"], by_id["grid b/2"]["verdict"]) == ("7", "9", "approved")
        assert by_id["grid-a"]["verdict"] == "rejected" and by_id["grid-a"]["sync"] == ""
        assert by_id["grid b/2"]["reviewer"] == "Ana Souza"

        import opentimelineio as otio

        timeline = otio.adapters.read_from_string(_get(server.url + "export.otio").decode(), "otio_json")
        clips = {c.name: c for c in timeline.find_clips()}
        marker = clips["grid b/2"].markers[0]
        assert marker.color == "GREEN" and marker.name.startswith("APPROVED")
        assert marker.metadata["edidub"]["sync"] == 7 and marker.metadata["edidub"]["naturalness"] == 9
        assert clips["grid-a"].markers[0].color == "RED"
        assert clips["grid b/2"].source_range.start_time.to_timecode() == "01:00:00:10"

        # media are served with byte ranges (what a <video> element asks for)
        req = urllib.request.Request(server.url + "media/0/original", headers={"Range": "bytes=0-99"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 206 and len(r.read()) == 100


def test_bad_writes_are_refused(batch):
    with ReviewServer(batch, port=0) as server:
        def post(path, body, ctype="application/json"):
            req = urllib.request.Request(server.url + path, data=body, method="POST", headers={"Content-Type": ctype})
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
