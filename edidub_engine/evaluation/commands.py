"""``edidub eval``, ``edidub curate`` and ``edidub review``: the argparse wiring, so cli.py adds them with one line.

    from .evaluation.commands import add_eval_parsers
    add_eval_parsers(sub)

Handlers return an exit status and raise :class:`EdidubError` subclasses on
bad input; cli.py's ``main`` turns those into a message and a hint.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InvalidArgumentError, MediaNotFoundError, OutputExistsError

__all__ = ["add_eval_parsers", "cmd_check", "cmd_curate", "cmd_eval", "cmd_review"]


def add_eval_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``eval``, ``curate`` and ``review`` on ``subparsers``."""
    ev = subparsers.add_parser(
        "eval",
        help="dub a benchmark with shuffled audio and print the paper's Table 1 (LSE-D/C, ID-P/TC and more)",
        description=(
            "Dub every clip of BENCH_DIR (its first --seconds) with another clip's sound (seeded shuffle), measure "
            "LSE-D and LSE-C (SyncNet, --sync-weights), ID-P and ID-TC (InceptionResnetV1, --id-weights; softmax-weighted "
            "over frames), PSNR/SSIM inside and outside the mask, the passed-through fraction and the landmark sync proxy; "
            "print mean ± standard error like Table 1 and write run.json, qc.html and batch.json (for `edidub review`) "
            "to --output. --compare OTHER/run.json adds the one-sided Wilcoxon signed-rank test of appendix A."
        ),
    )
    ev.add_argument("bench_dir", metavar="BENCH_DIR", help="folder of benchmark clips (with sound)")
    ev.add_argument("--models", help="model bundle folder (default: as `edidub dub`)")
    ev.add_argument("--id-weights", metavar="FILE", help="facenet-pytorch InceptionResnetV1 state dict (e.g. 20180402-114759-vggface2.pt); without it ID-P/ID-TC are n/a")
    ev.add_argument("--sync-weights", metavar="FILE", help="syncnet_python syncnet_v2.model; without it LSE-D/LSE-C are n/a")
    ev.add_argument("-o", "--output", help="run folder (new or empty); default ./eval-<benchmark>")
    ev.add_argument("--seed", type=int, default=0, help="seed of the audio shuffle and of the dubs (default 0)")
    ev.add_argument("--seconds", type=float, default=5.0, help="dub the first S seconds of each clip (default 5, as the paper's LRS2/LRS3 sets)")
    ev.add_argument("--max-clips", type=int, help="use only the first N clips")
    ev.add_argument("--steps", type=int, help="DDIM sampling and inversion steps (default: the bundle's)")
    ev.add_argument("--codec", default="h264", choices=["h264", "ffv1", "prores_hq"], help="codec of the dubs (default h264: the review page plays it)")
    ev.add_argument("--compare", metavar="RUN_JSON", help="an earlier run.json: test whether this run scores better (one-sided Wilcoxon)")
    ev.set_defaults(func=cmd_eval)

    cu = subparsers.add_parser(
        "curate",
        help="sort clips into the paper's front and occluded benchmark sets (appendix C)",
        description=(
            "Score every clip: the pose score (max |pitch|, |yaw|, |roll| over every Nth frame; front when under "
            "--threshold and the clip lasts --min-duration) and hand-over-face occlusion (face landmarks inside a hand's "
            "convex hull, summed over the sampled frames; occluded above 30). Early exit, parallel over --workers processes."
        ),
    )
    cu.add_argument("clips", nargs="+", metavar="CLIP_OR_DIR", help="video files or folders (searched recursively)")
    cu.add_argument("--threshold", type=float, default=None, help="front threshold in degrees (default 20; the paper's value is lost)")
    cu.add_argument("--min-duration", type=float, default=None, help="shortest front clip in seconds (default 6, as the paper)")
    cu.add_argument("--every", type=int, default=None, help="sample every Nth frame (default 10, as the paper)")
    cu.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")
    cu.add_argument("-o", "--output", help="write the lists and scores as JSON here")
    cu.set_defaults(func=cmd_curate)

    ck = subparsers.add_parser(
        "check",
        help="measure each stage of a model bundle against its trivial baseline; decides whether its SRD runs",
        description=(
            "Dub each CLIP (clips the bundle was not trained on) with its own sound and measure, inside the lower-face "
            "mask: the LSD round trip against a mean-colour fill, the SRD against bicubic upsampling, and the whole "
            "render in the native frame; the actor's own mouths moved from other frames, alone and edited by the LSD; and, "
            "with two clips or more, each clip dubbed with the next one's speech: do its lips follow that line? "
            "--write-card stores the figures in the bundle's model card; `edidub dub` then runs the SRD only if it beat "
            "bicubic, and the LSD on moved mouths only if its edit brought them closer to the truth."
        ),
    )
    ck.add_argument("models", metavar="MODEL_DIR", nargs="?", help="model bundle folder (default: as `edidub dub`)")
    ck.add_argument("--clip", dest="clips", action="append", required=True, metavar="CLIP",
                    help="a talking-head clip with its own speech, not in the training set (repeat for several)")
    ck.add_argument("--start", type=int, default=0, help="first frame of each clip (default 0)")
    ck.add_argument("--frames", type=int, default=24, help="frames per clip (default 24)")
    ck.add_argument("--write-card", action="store_true", help="write the figures into MODEL_DIR/model_card.json ('check')")
    ck.add_argument("-o", "--output", help="also write the figures as JSON here")
    ck.set_defaults(func=cmd_check)

    rv = subparsers.add_parser(
        "review",
        help="open a local review page: original and dub side by side, ratings, approve/reject, CSV and OTIO export",
        description=(
            "Serve BATCH_DIR (a folder with batch.json, as `edidub eval` writes, or the dubbed timeline `edidub batch` wrote, "
            "whose review set is then built beside it) on 127.0.0.1: play original and dub side "
            "by side, rate sync and naturalness 1–10, approve or reject. Verdicts are kept in BATCH_DIR/review.sqlite and "
            "exported as CSV and as OTIO markers (from the page, or with --export-csv/--export-otio without serving)."
        ),
    )
    rv.add_argument("batch_dir", metavar="BATCH_DIR", help="an `edidub eval` folder, or a dubbed timeline from `edidub batch`")
    rv.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0 picks a free one)")
    rv.add_argument("--export-csv", metavar="FILE", help="write the verdicts as CSV and exit")
    rv.add_argument("--export-otio", metavar="FILE", help="write the verdicts as OTIO markers and exit")
    rv.set_defaults(func=cmd_review)


def cmd_eval(args: argparse.Namespace) -> int:
    from ..commandline import quiet_native_logging
    from .bench import compare_runs, run_benchmark

    quiet_native_logging()
    bench = Path(args.bench_dir).expanduser()
    output = Path(args.output) if args.output else Path.cwd() / f"eval-{bench.resolve().name}"
    other = None
    if args.compare:
        compare_path = Path(args.compare).expanduser()
        if not compare_path.is_file():
            raise MediaNotFoundError(f"run {compare_path} does not exist", hint="give the run.json of an earlier `edidub eval`")
        other = json.loads(compare_path.read_text(encoding="utf-8"))
    from ..commandline import StageProgress

    with StageProgress(units={"lip-sync": "step"}) as bars:  # bars on a terminal, a line per stage in a log
        run = run_benchmark(bench, output, models=args.models, id_weights=args.id_weights, sync_weights=args.sync_weights,
                            seed=args.seed, max_seconds=args.seconds, max_clips=args.max_clips, codec=args.codec, steps=args.steps,
                            log=lambda line: print(line, file=sys.stderr), progress=bars)
    print(run["table"])
    for missing in run["not_measured"]:
        print(f"n/a: not measured without {missing}")
    if other is not None:
        tests = compare_runs(run, other)
        run["compare"] = {"against": str(args.compare), "tests": tests}
        (output / "run.json").write_text(json.dumps(run, indent=1, default=str) + "\n", encoding="utf-8")
        print(f"one-sided Wilcoxon signed-rank, this run better than {args.compare} ({next(iter(tests.values()))['pairs']} paired clips):")
        for key, t in tests.items():
            p = "n/a" if t["p"] is None else f"p = {t['p']:.4f}"
            print(f"  {key:22s} {p:12s} {t['stars']}")
    print(f"wrote {output / 'run.json'}, {output / 'qc.html'} and {output / 'batch.json'} (open with: edidub review {output})")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from ..models.bundle import read_bundle, resolve_bundle
    from .check import check_bundle, write_check_into_card

    for clip in args.clips:
        if not Path(clip).expanduser().is_file():
            raise MediaNotFoundError(f"clip {clip} does not exist", hint="give talking-head clips with their own speech")
    if args.frames < 8:
        raise InvalidArgumentError(f"--frames {args.frames} is too few to measure", hint="use 8 or more")
    bundle = read_bundle(resolve_bundle(args.models))

    def progress(stage: str, i: int, n: int, name: str) -> None:
        print(f"  {stage}: {name} ({i + 1}/{n})", file=sys.stderr, flush=True)

    summary = check_bundle(bundle.path, [str(Path(c).expanduser()) for c in args.clips], start=args.start, frames=args.frames,
                           progress=progress)
    lsd, srd, e2e = summary["lsd"], summary["srd"], summary["end_to_end"]
    print(f"{bundle.name} {bundle.version}, own-speech round trips on {len(args.clips)} clip(s), PSNR inside the lower-face mask:")
    print(f"  LSD        {lsd['round_trip_db']:6.2f} dB   (mean-colour fill {lsd['baseline_db']:.2f} dB)")
    print(f"  SRD        {srd['srd_db']:6.2f} dB   (bicubic {srd['bicubic_db']:.2f} dB): "
          + ("the SRD wins its stage" if srd["beats_bicubic"] else "the SRD does not beat bicubic; `edidub dub` will upsample instead"))
    print(f"  end to end {e2e['lower_face_db']:6.2f} dB   (mean-colour fill {e2e['baseline_db']:.2f} dB; restore: {e2e['restore']})")
    if "with_srd_db" in e2e:
        print(f"             with the SRD {e2e['with_srd_db']:.2f} dB, with bicubic {e2e['with_bicubic_db']:.2f} dB: "
              + ("the SRD runs" if e2e["restore"] == "srd" else "the SRD does not gain end to end; `edidub dub` will upsample instead"))
    mouths = summary["mouths"]
    print(f"  mouths     {mouths['moved_db']:6.2f} dB   (another frame's mouth, at least 6 frames away), the LSD's edit of them "
          f"{mouths['lsd_db']:.2f} dB: " + ("the LSD edits them" if mouths["runs_lsd"] else "`edidub dub` places them without the LSD"))
    if (sync := summary.get("lip_sync")) is not None:
        print(f"  lip sync   each clip dubbed with the next clip's speech: r {sync['copy_corr']:.2f} with the source's mouth, "
              f"{100 * sync['open_change']:.0f} % changed, sync with the line {sync['sync_dub']:.2f}, with the original sound {sync['sync_orig']:.2f}")
    if args.output:
        from ..files import write_text_atomically

        write_text_atomically(Path(args.output), json.dumps(summary, indent=2) + "\n")
    if args.write_card:
        print(f"wrote the figures into {write_check_into_card(bundle.path, summary)}")
    return 0


def cmd_curate(args: argparse.Namespace) -> int:
    from ..commandline import quiet_native_logging
    from . import curate as C

    quiet_native_logging()
    paths: list[Path] = []
    for item in args.clips:
        p = Path(item).expanduser()
        if p.is_dir():
            paths += C.find_clips(p)
        elif p.is_file():
            paths.append(p)
        else:
            raise MediaNotFoundError(f"{p} does not exist", hint="give video files or folders")
    kwargs = {k: v for k, v in (("threshold_deg", args.threshold), ("min_duration_s", args.min_duration), ("every", args.every)) if v is not None}
    if kwargs.get("every", 1) < 1:
        raise InvalidArgumentError("--every must be 1 or more")
    result = C.curate(paths, workers=args.workers, **kwargs)
    print(C.format_curation(result))
    if args.output:
        Path(args.output).expanduser().write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from .review import ReviewServer, ReviewStore, export_csv, export_otio, load_batch

    batch_dir = Path(args.batch_dir).expanduser()
    if not batch_dir.is_dir():  # an `edidub batch` output: its review set is built beside it
        from .review.manifest import review_set_for_batch

        batch_dir = review_set_for_batch(batch_dir)
        print(f"review set of {args.batch_dir}: {batch_dir}")
    if args.export_csv or args.export_otio:
        batch = load_batch(batch_dir)
        store = ReviewStore(batch_dir / "review.sqlite")
        try:
            verdicts = store.all()
        finally:
            store.close()
        for target, write in ((args.export_csv, lambda p: p.write_text(export_csv(batch, verdicts), encoding="utf-8")),
                              (args.export_otio, lambda p: p.write_text(export_otio(batch, verdicts).to_json_string(), encoding="utf-8"))):
            if target:
                path = Path(target).expanduser()
                if path.exists():
                    raise OutputExistsError(f"{path} already exists", hint="choose another file name")
                write(path)
                print(f"wrote {path}")
        return 0
    try:
        server = ReviewServer(batch_dir, port=args.port)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror})", hint="choose another --port, or 0 for any free one") from None
    print(f"reviewing {len(server.batch['shots'])} shot(s) of {batch_dir} at {server.url} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
        server.store.close()
    return 0
