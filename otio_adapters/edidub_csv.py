"""OTIO adapter ``edidub_csv``: EdiDub shot lists as CSV, one row per dub segment (``.csv``).

Same shape as :mod:`otio_adapters.edidub_json`; the columns are ``shotlist_io.CSV_COLUMNS``.
Loaded by file path by OTIO's plugin system, so imports are absolute.
"""

from otio_adapters import shotlist_io


def read_from_string(input_str, **_ignored):
    return shotlist_io.to_timeline(shotlist_io.from_csv(input_str))


def read_from_file(filepath, **_ignored):
    with open(filepath, encoding="utf-8-sig", newline="") as f:
        return read_from_string(f.read())


def write_to_string(input_otio, **kwargs):
    return shotlist_io.to_csv(shotlist_io.from_timeline(input_otio, **kwargs))
