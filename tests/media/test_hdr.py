"""HDR10 metadata carried over: read from decoded frames, written into .mov boxes, read back by FFmpeg.

Real files made with PyAV, no mocks. The figures a user would see are what is asserted: the exact
values FFmpeg hands a player after our edit, and every sample's bytes unchanged.
"""

from __future__ import annotations

import os
import struct
from fractions import Fraction as F
from pathlib import Path

import av
import numpy as np
import pytest

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.media.hdr import (
    ContentLightLevel,
    HdrMetadata,
    MasteringDisplay,
    MovLayoutError,
    hdr_from_frame,
    read_mov_hdr,
    write_mov_hdr,
)

# The HDR10 test pattern's metadata, as x265 takes it (G, B, R, white in 0.00002; max, min luminance in 0.0001 cd/m²).
X265_MASTER_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
P3_1000 = HdrMetadata(
    mastering=MasteringDisplay(
        primaries=((F("0.68"), F("0.32")), (F("0.265"), F("0.69")), (F("0.15"), F("0.06"))),
        white_point=(F("0.3127"), F("0.329")),
        min_luminance_cd_m2=F("0.005"),
        max_luminance_cd_m2=F(1000),
    ),
    content_light=ContentLightLevel(max_cll_cd_m2=1000, max_fall_cd_m2=400),
)
BT2020_4000 = HdrMetadata(
    mastering=MasteringDisplay(
        primaries=((F("0.708"), F("0.292")), (F("0.17"), F("0.797")), (F("0.131"), F("0.046"))),
        white_point=(F("0.3127"), F("0.329")),
        min_luminance_cd_m2=F("0.0001"),
        max_luminance_cd_m2=F(4000),
    ),
    content_light=ContentLightLevel(max_cll_cd_m2=3500, max_fall_cd_m2=1200),
)
BT2020, PQ = 9, 16

# (encoder, pixel format, options, width, height, sample entry) for each .mov deliverable family
MOV_CODECS = {
    "prores_hq": ("prores_aw", "yuv422p10le", {"profile": "3", "vendor": "apl0"}, 32, 32, "apch"),
    "prores_4444": ("prores_ks", "yuva444p10le", {"profile": "4", "vendor": "apl0", "alpha_bits": "16"}, 32, 32, "ap4h"),
    "dnxhr_hqx": ("dnxhd", "yuv422p10le", {"profile": "dnxhr_hqx"}, 256, 144, "AVdh"),  # DNxHR's smallest frames
}


def _picture(index: int, width: int, height: int, pix_fmt: str) -> av.VideoFrame:
    ramp = (np.arange(width * height * 3, dtype=np.uint32).reshape(height, width, 3) * (index + 3) % 256).astype(np.uint8)
    return av.VideoFrame.from_ndarray(ramp, format="rgb24").reformat(format=pix_fmt)


def _write_mov(
    path: Path,
    codec: str = "prores_hq",
    *,
    movflags: str = "write_colr",
    frames: int = 3,
    video_tracks: int = 1,
    container_format: str = "mov",
) -> Path:
    """A tiny BT.2020/PQ clip as the engine writes its masters: colr atom, PCM audio, a timecode track."""
    encoder, pix_fmt, options, width, height, _ = MOV_CODECS[codec]
    output = av.open(str(path), mode="w", format=container_format, options={"movflags": movflags} if container_format == "mov" else {})
    videos = []
    for _ in range(video_tracks):
        stream = output.add_stream(encoder, rate=24, options=dict(options))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        ctx = stream.codec_context
        ctx.color_primaries, ctx.color_trc, ctx.colorspace = BT2020, PQ, BT2020
        stream.metadata["timecode"] = "01:00:00:00"
        videos.append(stream)
    audio = output.add_stream("pcm_s24le", rate=48000, layout="mono")
    for i in range(frames):
        for stream in videos:
            for packet in stream.encode(_picture(i, width, height, pix_fmt)):
                output.mux(packet)
    for stream in videos:
        for packet in stream.encode():
            output.mux(packet)
    samples = av.AudioFrame.from_ndarray(np.zeros((1, 2000 * frames), dtype=np.int32), format="s32", layout="mono")
    samples.sample_rate = 48000
    for packet in [*audio.encode(samples), *audio.encode()]:
        output.mux(packet)
    output.close()
    return path


def _packets(path: Path) -> list[tuple[int, int | None, int | None, bytes]]:
    with av.open(str(path)) as container:
        return [(p.stream.index, p.pts, p.dts, bytes(p)) for p in container.demux() if p.size]


def _frames_hdr(path: Path) -> list[HdrMetadata | None]:
    with av.open(str(path)) as container:
        return [hdr_from_frame(frame) for frame in container.decode(video=0)]


def _box_walk(data: bytes, start: int, end: int):
    """(type, header size, start, end) of each box in data[start:end] (an independent reader, not the module's)."""
    while start < end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, start + 8)
            header = 16
        yield kind.decode("latin-1"), header, start, start + size
        start += size


def _video_entry_children(path: Path) -> list[str]:
    """The box types inside the video track's sample entry."""
    data = path.read_bytes()
    (moov,) = [b for b in _box_walk(data, 0, len(data)) if b[0] == "moov"]
    for trak in (b for b in _box_walk(data, moov[2] + moov[1], moov[3]) if b[0] == "trak"):
        node = trak
        for kind in ("mdia", "minf", "stbl", "stsd"):
            (node,) = [b for b in _box_walk(data, node[2] + node[1], node[3]) if b[0] == kind]
            if kind == "mdia":
                (hdlr,) = [b for b in _box_walk(data, node[2] + node[1], node[3]) if b[0] == "hdlr"]
                if data[hdlr[2] + hdlr[1] + 8 : hdlr[2] + hdlr[1] + 12] != b"vide":
                    break
        else:
            (entry,) = list(_box_walk(data, node[2] + node[1] + 8, node[3]))
            children_end = entry[3] - 4 if data[entry[3] - 4 : entry[3]] == bytes(4) else entry[3]  # QuickTime's zero terminator
            return [b[0] for b in _box_walk(data, entry[2] + entry[1] + 78, children_end)]
    raise AssertionError(f"no video track in {path}")


@pytest.fixture
def hevc_hdr_source(tmp_path) -> Path:
    """An HEVC clip whose SEI carry the HDR10 metadata, as a graded HDR camera original or deliverable does."""
    if "libx265" not in av.codecs_available:
        pytest.skip("this FFmpeg has no libx265 to make an HEVC HDR10 source")
    path = tmp_path / "hdr10.mp4"
    with av.open(str(path), mode="w") as output:
        params = f"log-level=error:hdr10=1:repeat-headers=1:master-display={X265_MASTER_DISPLAY}:max-cll=1000,400"
        stream = output.add_stream("libx265", rate=24, options={"x265-params": params})
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p10le"
        ctx = stream.codec_context
        ctx.color_primaries, ctx.color_trc, ctx.colorspace = BT2020, PQ, BT2020
        for i in range(3):
            for packet in stream.encode(_picture(i, 64, 64, "yuv420p10le")):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return path


# -- reading ------------------------------------------------------------------------------------------


def test_an_hevc_hdr10_source_gives_its_exact_mastering_display_and_light_levels(hevc_hdr_source):
    found = _frames_hdr(hevc_hdr_source)
    assert len(found) == 3
    assert all(hdr == P3_1000 for hdr in found)  # exact: 0.68 is 34000/50000, 0.005 cd/m² is 50/10000
    assert found[0].describe() == "mastering P3-D65 primaries, 0.0050–1000 cd/m², MaxCLL 1000, MaxFALL 400"


def test_a_plain_pyav_mov_loses_the_metadata_that_write_mov_hdr_puts_back(tmp_path):
    path = _write_mov(tmp_path / "plain.mov")
    assert _frames_hdr(path) == [None, None, None]  # the issue: PyAV cannot attach it when encoding
    assert read_mov_hdr(path) is None


# -- writing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", sorted(MOV_CODECS))
def test_written_boxes_come_back_exactly_on_every_frame_and_no_sample_moves(tmp_path, codec):
    path = _write_mov(tmp_path / f"{codec}.mov", codec)
    before_packets, before_children = _packets(path), _video_entry_children(path)
    assert "colr" in before_children

    write_mov_hdr(path, P3_1000)

    assert _frames_hdr(path) == [P3_1000] * 3  # FFmpeg's demuxer reads the boxes, its decoder puts them on every frame
    assert read_mov_hdr(path) == P3_1000
    assert _packets(path) == before_packets  # video, audio and timecode samples: same bytes, same timestamps
    assert _video_entry_children(path) == [*before_children, "mdcv", "clli"]
    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context
        assert (ctx.color_primaries, ctx.color_trc, ctx.colorspace) == (BT2020, PQ, BT2020)
        assert container.streams.video[0].codec_tag == MOV_CODECS[codec][5]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left beside it


def test_writing_again_replaces_the_boxes_and_an_absent_part_keeps_the_files(tmp_path):
    path = _write_mov(tmp_path / "twice.mov")
    write_mov_hdr(path, P3_1000)
    write_mov_hdr(path, BT2020_4000)
    assert _video_entry_children(path).count("mdcv") == 1 and _video_entry_children(path).count("clli") == 1
    assert _frames_hdr(path)[0] == BT2020_4000
    assert BT2020_4000.describe() == "mastering BT.2020 primaries, 0.0001–4000 cd/m², MaxCLL 3500, MaxFALL 1200"

    light_only = HdrMetadata(content_light=ContentLightLevel(max_cll_cd_m2=800, max_fall_cd_m2=120))
    write_mov_hdr(path, light_only)
    assert _frames_hdr(path)[0] == HdrMetadata(mastering=BT2020_4000.mastering, content_light=light_only.content_light)
    assert _video_entry_children(path).count("mdcv") == 1 and _video_entry_children(path).count("clli") == 1


def test_values_between_box_units_come_back_rounded_to_the_nearest_unit(tmp_path):
    path = _write_mov(tmp_path / "units.mov")
    fine = MasteringDisplay(
        primaries=((F("0.680004"), F("0.32")), (F("0.265"), F("0.690009")), (F("0.15"), F("0.06"))),
        white_point=(F("0.3127"), F("0.329")),
        min_luminance_cd_m2=F("0.00504"),
        max_luminance_cd_m2=F("999.99996"),
    )
    write_mov_hdr(path, HdrMetadata(mastering=fine))
    assert _frames_hdr(path)[0] == HdrMetadata(mastering=P3_1000.mastering)  # 0.00002 and 0.0001 cd/m² steps


def test_no_metadata_leaves_the_file_untouched(tmp_path):
    path = _write_mov(tmp_path / "sdr.mov")
    before, stamp = path.read_bytes(), path.stat().st_mtime_ns
    write_mov_hdr(path, None)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == stamp


def test_64_bit_box_sizes_are_read_and_kept(tmp_path):
    """FFmpeg writes a 64-bit mdat in the place of its 'wide' box past 4 GiB; moov and trak may be 64-bit too."""
    path = _write_mov(tmp_path / "large.mov")
    data = path.read_bytes()
    boxes = {b[0]: b for b in _box_walk(data, 0, len(data))}
    wide, mdat, moov = boxes["wide"], boxes["mdat"], boxes["moov"]
    assert wide[3] == mdat[2] and moov[2] == mdat[3] and moov[3] == len(data)
    moov_payload = data[moov[2] + 8 : moov[3]]
    traks = [b for b in _box_walk(moov_payload, 0, len(moov_payload)) if b[0] == "trak"]
    for kind, _, start, end in reversed(traks):  # each trak as a 64-bit box
        large_header = struct.pack(">I4sQ", 1, b"trak", end - start + 8)
        moov_payload = moov_payload[:start] + large_header + moov_payload[start + 8 : end] + moov_payload[end:]
    rebuilt = (
        data[: wide[2]]
        + struct.pack(">I4sQ", 1, b"mdat", mdat[3] - wide[2])  # same payload offset: no chunk offset changes
        + data[mdat[2] + 8 : mdat[3]]
        + struct.pack(">I4sQ", 1, b"moov", len(moov_payload) + 16)
        + moov_payload
    )
    path.write_bytes(rebuilt)
    before = _packets(path)
    assert len(before) > 3  # FFmpeg reads the 64-bit layout

    write_mov_hdr(path, P3_1000)

    assert _frames_hdr(path) == [P3_1000] * 3
    assert _packets(path) == before
    data = path.read_bytes()
    top = {b[0]: b for b in _box_walk(data, 0, len(data))}
    assert top["mdat"][1] == 16 and top["moov"][1] == 16
    moov = top["moov"]
    assert all(b[1] == 16 for b in _box_walk(data, moov[2] + 16, moov[3]) if b[0] == "trak")


def test_permissions_and_a_symlinked_name_are_kept(tmp_path):
    target = _write_mov(tmp_path / "master.mov")
    os.chmod(target, 0o640)
    link = tmp_path / "link.mov"
    link.symlink_to(target.name)
    write_mov_hdr(link, P3_1000)
    assert link.is_symlink() and os.readlink(link) == target.name
    assert target.stat().st_mode & 0o777 == 0o640
    assert read_mov_hdr(target) == P3_1000


# -- refusals -----------------------------------------------------------------------------------------


def _faststart(tmp_path: Path) -> Path:
    return _write_mov(tmp_path / "faststart.mov", movflags="write_colr+faststart")


def _matroska(tmp_path: Path) -> Path:
    return _write_mov(tmp_path / "master.mkv", container_format="matroska")


def _two_video_tracks(tmp_path: Path) -> Path:
    return _write_mov(tmp_path / "stereo.mov", video_tracks=2)


def _truncated(tmp_path: Path) -> Path:
    path = _write_mov(tmp_path / "cut.mov")
    path.write_bytes(path.read_bytes()[:-40])
    return path


@pytest.mark.parametrize(
    "make, reason",
    [
        (_faststart, "moov box comes before its media data"),
        (_matroska, "is not a QuickTime/MP4 file"),
        (_two_video_tracks, "2 video tracks"),
        (_truncated, "claims"),
    ],
    ids=["faststart", "matroska", "two-video-tracks", "truncated"],
)
def test_a_file_that_cannot_grow_safely_is_refused_by_name_and_left_unchanged(tmp_path, make, reason):
    path = make(tmp_path)
    before, listing = path.read_bytes(), sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(MovLayoutError) as caught:
        write_mov_hdr(path, P3_1000)
    assert isinstance(caught.value, ValueError)
    assert path.name in str(caught.value) and reason in str(caught.value) and "unchanged" in str(caught.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing


# -- the values themselves ----------------------------------------------------------------------------


def test_describe_names_known_primaries_and_spells_out_others():
    odd = MasteringDisplay(
        primaries=((F("0.7"), F("0.3")), (F("0.2"), F("0.7")), (F("0.14"), F("0.05"))),
        white_point=(F("0.3127"), F("0.329")),
        min_luminance_cd_m2=F(0),
        max_luminance_cd_m2=F("600.5"),
    )
    assert HdrMetadata(mastering=odd).describe() == (
        "mastering primaries R(0.7000, 0.3000) G(0.2000, 0.7000) B(0.1400, 0.0500) white (0.3127, 0.3290), "
        "0.0000–600.5 cd/m², no content light level"
    )
    dci = MasteringDisplay(P3_1000.mastering.primaries, (F("0.314"), F("0.351")), F("0.005"), F(48))
    assert dci.primaries_name == "DCI-P3"
    assert HdrMetadata(content_light=ContentLightLevel(0, 0)).describe() == "no mastering display, MaxCLL 0, MaxFALL 0"


@pytest.mark.parametrize(
    "build",
    [
        lambda: HdrMetadata(),
        lambda: ContentLightLevel(max_cll_cd_m2=70000, max_fall_cd_m2=400),
        lambda: ContentLightLevel(max_cll_cd_m2=1000.5, max_fall_cd_m2=400),
        lambda: MasteringDisplay(((F("1.2"), F("0.3")), (0, 0), (0, 0)), (F("0.3127"), F("0.329")), F(0), F(1000)),
        lambda: MasteringDisplay(P3_1000.mastering.primaries, (F("0.3127"), F("0.329")), F(10), F(1)),
    ],
    ids=["empty", "maxcll-too-big", "fractional-maxcll", "x-above-1", "min-above-max"],
)
def test_values_no_box_can_hold_are_refused(build):
    with pytest.raises(InvalidArgumentError):
        build()
