"""OTIO adapter ``edidub_csv``: EdiDub shot lists as CSV, one row per dub segment.

It claims no file suffix (``.csv`` belongs to every OTIO user in the environment): read and write
with ``adapter_name="edidub_csv"``.

Same shape as :mod:`otio_adapters.edidub_json`; the columns are ``shotlist_io.CSV_COLUMNS``.
Loaded by file path by OTIO's plugin system, so imports are absolute.
"""

from otio_adapters import shotlist_io


def read_from_string(input_str):
    return shotlist_io.to_timeline(shotlist_io.from_csv(input_str))


def read_from_file(filepath):
    with open(filepath, encoding="utf-8-sig", newline="") as f:
        return read_from_string(f.read())


def write_to_string(input_otio, *, dub_track=shotlist_io.NOT_GIVEN, picture_tracks=None, handles=shotlist_io.NOT_GIVEN, output=None,
                    options=None):
    """The shots of ``input_otio`` (``dub_track``: its dub audio track; ``None`` picture only; a shot list's own
    timeline knows it). Only these arguments are accepted: a misspelt one is an error, not a silent default."""
    return shotlist_io.to_csv(shotlist_io.adapter_shots(input_otio, dub_track=dub_track, picture_tracks=picture_tracks, handles=handles,
                                                       output=output, options=options))
