"""`edidub doctor`: each line says ok, optional, warn or MISSING, and only MISSING fails it."""

from __future__ import annotations

import json
import shutil

from edidub_engine.doctor import MISSING, OK, OPTIONAL, report
from edidub_engine.models.bundle import DEFAULT_BUNDLE, SHIPPED_DIR


def _lines(**kwargs):
    return {line.split(":")[0]: status for line, status in report(**kwargs)}


def test_a_missing_hubert_is_optional_for_a_mel_bundle_and_missing_for_a_hubert_one(tmp_path):
    lines = _lines(hubert_dir=str(tmp_path / "no-hubert"))
    hubert = [s for k, s in lines.items() if k.startswith("speech frontend 'hubert'")]
    assert hubert == [OPTIONAL] and MISSING not in lines.values() and lines["speech frontend 'mel'"] == OK

    bundle = tmp_path / "hubert-bundle"
    shutil.copytree(SHIPPED_DIR / DEFAULT_BUNDLE, bundle)
    meta = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
    (bundle / "bundle.json").write_text(json.dumps({**meta, "frontend": "hubert"}), encoding="utf-8")
    lines = _lines(models=str(bundle), hubert_dir=str(tmp_path / "no-hubert"))
    assert [s for k, s in lines.items() if k.startswith("speech frontend 'hubert'")] == [MISSING]


def test_a_missing_bundle_fails_the_doctor(tmp_path):
    assert _lines(models=str(tmp_path / "nowhere"))["model bundle"] == MISSING


def test_the_doctor_reports_a_clips_pixels_and_what_a_dub_keeps(footage_path, tmp_path):
    clip = footage_path("grid_bbaf2n.mpg")
    lines = [(line, status) for line, status in report(clips=(str(clip), str(tmp_path / "gone.mov"))) if line.startswith("clip ")]
    (found, found_status), (gone, gone_status) = lines
    assert found_status == OK and "yuv420p (8-bit), untagged, limited range" in found and "sample for sample" in found
    assert gone_status != MISSING and "gone.mov" in gone  # a clip is not the machine: it never fails the doctor
