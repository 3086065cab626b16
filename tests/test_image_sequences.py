"""Issue 20: EXR and DPX plates in and out, for studios that conform in Nuke or Resolve.

Each test writes its own plate from a shared GRID clip with OpenImageIO — half-float scene-linear
EXR with a highlight above 1.0 and camera metadata, 10-bit DPX — dubs it with the starter at few
steps, and compares the files themselves: outside the matte every sample keeps its bits, the
frames keep their numbers and headers, and the mouth is a face (a display-referred PSNR that
noise fails).
"""

from __future__ import annotations

import os
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

OpenImageIO = pytest.importorskip("OpenImageIO")

from edidub_engine.errors import InvalidArgumentError, MediaDecodeError, MediaNotFoundError, OutputExistsError  # noqa: E402
from edidub_engine.media import iter_pictures, probe_video, read_frames  # noqa: E402
from edidub_engine.media.linear import to_display, to_linear, to_rgb8  # noqa: E402
from edidub_engine.media.sequence import SequenceWriter, find_sequence  # noqa: E402
from edidub_engine.render import LoadedModels, ShotRenderer  # noqa: E402
from edidub_engine.shot import ShotRequest  # noqa: E402

FRAMES = 8
FIRST = 1001


@pytest.fixture(scope="module")
def models(starter_bundle):
    return LoadedModels.load(starter_bundle)


@pytest.fixture(scope="module")
def grid(footage_path):
    return read_frames(footage_path("grid_bbaf2n.mpg"), 20, 20 + FRAMES)


def _timecode(k: int) -> int:
    """SMPTE 12M BCD of 01:00:00:0k (k < 10), as EXR and DPX headers store it."""
    return 0x01000000 + k


def _write_plate(folder, rgb, kind):
    """The GRID frames as a plate ``folder/plate.%04d.<kind>`` numbered from 1001."""
    folder.mkdir()
    for k, image in enumerate(rgb):
        h, w = image.shape[:2]
        if kind == "exr":
            pixels = to_linear(image / 255.0).astype(np.float16)
            pixels[0, 0] = 8.0  # a highlight above display white
            pixels[0, 1, 0] = np.float16(-0.0)  # a sign of zero that must survive
            spec = OpenImageIO.ImageSpec(w, h, 3, "half")
            spec.attribute("compression", "piz")
            spec.attribute("framesPerSecond", OpenImageIO.TypeDesc("rational"), (25, 1))
            spec.attribute("camera:Lens", "50mm")
        else:
            pixels = ((image.astype(np.int32) * 1023 + 127) // 255 + np.random.default_rng(k).integers(-1, 2, image.shape)).clip(0, 1023)
            pixels = (pixels.astype(np.uint16) << 6) | (pixels.astype(np.uint16) >> 4)
            spec = OpenImageIO.ImageSpec(w, h, 3, "uint16")
            spec.attribute("oiio:BitsPerSample", 10)
            spec.attribute("dpx:Transfer", "ITU-R 709-4")
            spec.attribute("dpx:FrameRate", 25.0)
        spec.attribute("smpte:TimeCode", OpenImageIO.TypeDesc("timecode"), (_timecode(k), 0))
        path = str(folder / f"plate.{FIRST + k:04d}.{kind}")
        out = OpenImageIO.ImageOutput.create(path)
        assert out.open(path, spec) and out.write_image(pixels) and out.close(), OpenImageIO.geterror()
    return folder / f"plate.%04d.{kind}"


def _read(path):
    image = OpenImageIO.ImageInput.open(str(path))
    try:
        spec = image.spec()
        pixels = image.read_image("half" if str(spec.format) == "half" else "uint16")
        return pixels, spec
    finally:
        image.close()


def _matte_reach(patch_path, dilate_px=4):
    reach = []
    with av.open(str(patch_path)) as container:
        for frame in container.decode(video=0):
            alpha = frame.to_ndarray(format="rgba")[..., 3] > 0
            reach.append(cv2.dilate(alpha.astype(np.uint8), np.ones((2 * dilate_px + 1,) * 2, np.uint8)) > 0)
    return reach


def _dub(models, source, line, out_dir, codec, **output):
    out_dir.mkdir(exist_ok=True)
    request = ShotRequest.from_dict({
        "shot_id": "sh", "source": {"path": str(source), "start_frame": 0, "end_frame": FRAMES},
        "dub_audio": [{"path": str(line)}], "output": {"dir": str(out_dir), "codec": codec, "patch": True, **output},
    })
    return ShotRenderer(models).dub_shot(request)


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


@pytest.mark.parametrize("kind", ["exr", "dpx"])
def test_a_plate_dubs_to_frames_with_its_own_numbers_headers_and_samples(kind, models, grid, footage_path, tmp_path):
    pattern = _write_plate(tmp_path / "plate", grid, kind)
    info = probe_video(pattern)
    assert (info.frame_count, info.rate, info.start_timecode, info.codec) == (FRAMES, Fraction(25), "01:00:00:00", kind)
    assert info.pix_fmt == {"exr": "gbrpf32le", "dpx": "gbrp10le"}[kind]
    clip = _dub(models, pattern, footage_path("dub_fr_french1.wav"), tmp_path / "out", kind)

    folder = tmp_path / "out" / "plate_sh_dub"
    assert clip.path == str(folder / f"plate_sh_dub.%04d.{kind}")
    assert sorted(os.listdir(folder)) == [f"plate_sh_dub.{FIRST + k}.{kind}" for k in range(FRAMES)] + ["plate_sh_dub.wav"]
    assert not [n for n in os.listdir(tmp_path / "out") if n.startswith(".")], "no temporary folder left"
    with av.open(str(folder / "plate_sh_dub.wav")) as wav:
        stream = wav.streams.audio[0]
        samples = sum(f.samples for f in wav.decode(stream))
    assert samples == FRAMES * 48000 // 25

    reach = _matte_reach(clip.patch_path)
    edited, inside = 0, []
    for k in range(FRAMES):
        src, src_spec = _read(pattern.parent / f"plate.{FIRST + k:04d}.{kind}")
        dub, dub_spec = _read(clip.path % (FIRST + k))
        assert str(dub_spec.format) == str(src_spec.format)
        if kind == "dpx":
            assert dub_spec.get_int_attribute("oiio:BitsPerSample") == 10
            assert dub_spec.get_string_attribute("dpx:Transfer") == "ITU-R 709-4"
        else:
            assert dub_spec.get_string_attribute("camera:Lens") == "50mm" and dub_spec.get_string_attribute("compression") == "piz"
            assert dub_spec.getattribute("framesPerSecond") == (25, 1)
        assert dub_spec.get_string_attribute("smpte:TimeCode") == src_spec.get_string_attribute("smpte:TimeCode") == f"01:00:00:0{k}"
        bits_src, bits_dub = (p.view(np.uint16) for p in (src, dub))  # half or 16-bit words, compared bit for bit
        outside = ~reach[k]
        assert np.array_equal(bits_src[outside], bits_dub[outside]), f"{kind} frame {FIRST + k} changed outside the matte"
        edited += int((bits_src[reach[k]] != bits_dub[reach[k]]).sum())
        if kind == "exr":
            shown_src, shown_dub = (to_rgb8(p.astype(np.float32)) for p in (src, dub))
        else:
            shown_src, shown_dub = ((p >> 8).astype(np.uint8) for p in (src, dub))
        inside.append(_psnr(shown_src[reach[k]], shown_dub[reach[k]]))
    assert edited > 1000, "the mouth was edited"
    # another line's mouth, still this face: noise over the matte gives about 10 dB
    print(f"{kind}: display-referred PSNR inside the matte reach against the plate: {np.mean(inside):.2f} dB")
    assert np.mean(inside) > 22.0


def test_a_video_source_dubs_to_10_bit_dpx_numbered_by_its_timecode(models, grid, footage_path, tmp_path):
    source = tmp_path / "source.mov"
    with av.open(str(source), "w") as out:
        stream = out.add_stream("prores_ks", rate=25, options={"profile": "3"})
        stream.width, stream.height, stream.pix_fmt = grid.shape[2], grid.shape[1], "yuv422p10le"
        stream.metadata["timecode"] = "10:00:00:00"
        for k, image in enumerate(grid):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv422p10le", src_colorspace="ITU601",
                                                                               dst_colorspace="ITU601", dst_color_range="MPEG")
            frame.pts, frame.time_base = k, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    clip = _dub(models, source, footage_path("dub_fr_french1.wav"), tmp_path / "out", "dpx", audio=False)
    first = 10 * 3600 * 25
    folder = tmp_path / "out" / "source_sh_dub"
    assert sorted(os.listdir(folder)) == [f"source_sh_dub.{first + k}.dpx" for k in range(FRAMES)]  # no sound asked for
    info = probe_video(source)
    reach = _matte_reach(clip.patch_path)
    writer = SequenceWriter(tmp_path / "unused", kind="dpx", width=info.width, height=info.height, rate=25,
                            source_format=info.pix_fmt, color=info.color)
    try:
        for k, (_, picture) in enumerate(iter_pictures(source)):
            plain = writer.conform(picture)  # the plain conversion of the source, nothing edited
            planes = [np.frombuffer(p, np.uint16).reshape(p.height, -1)[:, : p.width] for p in plain.planes]
            expected = np.stack([planes[2], planes[0], planes[1]], axis=-1)  # R, G, B
            dub, spec = _read(clip.path % (first + k))
            assert spec.get_int_attribute("oiio:BitsPerSample") == 10
            codes = ((dub.astype(np.uint32) * 1023 + 32767) // 65535).astype(np.uint16)
            assert np.array_equal(codes[~reach[k]], expected[~reach[k]])
            assert spec.get_string_attribute("smpte:TimeCode") == f"10:00:00:0{k}"
    finally:
        writer.abort()


def test_plates_are_named_as_patterns_hashes_or_their_folder_and_gaps_are_refused(grid, tmp_path):
    pattern = _write_plate(tmp_path / "plate", grid[:3], "exr")
    by_printf = find_sequence(pattern)
    assert by_printf == find_sequence(tmp_path / "plate" / "plate.####.exr") == find_sequence(tmp_path / "plate")
    assert (by_printf.first, by_printf.count, by_printf.kind) == (FIRST, 3, "exr")
    assert find_sequence(tmp_path / "plate" / "plate.1001.exr") is None  # one frame file is an ordinary image
    with pytest.raises(MediaNotFoundError, match="no files match"):
        probe_video(tmp_path / "plate" / "other.%04d.exr")
    os.remove(tmp_path / "plate" / "plate.1002.exr")
    with pytest.raises(MediaDecodeError, match=r"gaps: plate\.1002\.exr missing") as err:
        probe_video(pattern)
    assert "render or copy the missing frames" in str(err.value)
    _write_plate(tmp_path / "two", grid[:1], "exr")
    os.link(tmp_path / "two" / "plate.1001.exr", tmp_path / "two" / "other.1001.exr")
    with pytest.raises(InvalidArgumentError, match="more than one image sequence"):
        probe_video(tmp_path / "two")


def test_a_linear_plate_is_not_written_as_video_and_nothing_half_written_is_left(models, grid, footage_path, tmp_path):
    pattern = _write_plate(tmp_path / "plate", grid, "exr")
    with pytest.raises(InvalidArgumentError, match="scene-linear EXR plate") as err:
        _dub(models, pattern, footage_path("dub_fr_french1.wav"), tmp_path / "out", "prores_hq")
    assert "--codec exr" in str(err.value)
    (tmp_path / "out" / "plate_sh_dub").mkdir()
    with pytest.raises(OutputExistsError):
        _dub(models, pattern, footage_path("dub_fr_french1.wav"), tmp_path / "out", "exr", name="plate_sh_dub")
    assert os.listdir(tmp_path / "out") == ["plate_sh_dub"]
    # a writer stopped half way (a cancel, a full disk) leaves neither the folder nor its temporary twin
    writer = SequenceWriter(tmp_path / "out" / "partial", kind="exr", width=grid.shape[2], height=grid.shape[1], rate=25,
                            source_format="gbrpf32le")
    for _, picture in iter_pictures(pattern, 0, 2):
        writer.write_picture(picture)
    writer.abort()
    assert os.listdir(tmp_path / "out") == ["plate_sh_dub"]


def test_the_view_transform_round_trips_and_a_zero_change_keeps_every_bit():
    from edidub_engine.media.native import NativePicture
    from edidub_engine.media.probe import ColorTags

    values = np.linspace(0, 1, 1001)
    assert np.allclose(to_linear(to_display(values)), values, atol=1e-12)
    frame = av.VideoFrame(16, 8, "gbrpf32le")
    rng = np.random.default_rng(0)
    for plane in frame.planes:
        np.frombuffer(plane, np.float32).reshape(plane.height, -1)[:] = rng.normal(0.3, 0.5, (plane.height, plane.line_size // 4))
    picture = NativePicture(frame, ColorTags(matrix=0, primaries=1, transfer=8, range=2))
    before = [p.array.copy() for p in picture.planes]
    change = np.zeros((8, 16, 3), np.float32)
    change[2:4, 2:4] = 10.0  # ten 8-bit levels brighter, displayed
    picture.add_change(0, 0, change)
    for b, p in zip(before, picture.planes):
        mask = np.zeros_like(b, bool)
        mask[2:4, 2:4] = True
        assert np.array_equal(b.view(np.uint32)[~mask], p.array.view(np.uint32)[~mask])
        shown = to_display(p.array[mask]) - to_display(b[mask])
        moved = b[mask] < 0.9  # a sample the view does not clip moves by the change, displayed
        assert np.allclose(shown[moved & (b[mask] >= 0)], 10 / 255, atol=1e-6)


def test_the_daemon_admits_a_plate_under_its_roots_and_names_its_output_folder(grid, tmp_path):
    from edidub_engine.daemon.admission import check_against_media
    from edidub_engine.daemon.paths import MediaRoots, partial_files, remove_partial

    pattern = _write_plate(tmp_path / "plate", grid[:4], "dpx")
    (tmp_path / "out").mkdir()
    roots = MediaRoots([tmp_path], output_root=tmp_path / "out")
    shot = ShotRequest.from_dict({"shot_id": "sh010", "source": {"path": str(pattern), "start_frame": 0, "end_frame": 4},
                                  "dub_audio": [{"path": str(pattern.parent / "plate.1001.dpx")}], "output": {"codec": "dpx"}})
    prepared = roots.prepare(shot)
    assert prepared.output_path == tmp_path / "out" / "plate_sh010_dub"
    with pytest.raises(InvalidArgumentError, match="cannot be resolved"):  # a name too long for the file system: refused, no OSError
        roots.readable(str(tmp_path / ("x" * 300) / "."), "source")
    too_long = ShotRequest.from_dict({**shot.to_dict(), "source": {"path": str(pattern), "start_frame": 0, "end_frame": 40}})
    with pytest.raises(InvalidArgumentError, match="past the end"):
        check_against_media(too_long)
    # what an interrupted render of it left is a hidden folder, and it is cleared
    partial = tmp_path / "out" / ".plate_sh010_dub.partial-x1"
    partial.mkdir()
    (partial / "plate_sh010_dub.1001.dpx").write_bytes(b"half")
    assert partial_files(prepared.output_path) == [partial]
    remove_partial(partial)
    assert not partial.exists()
