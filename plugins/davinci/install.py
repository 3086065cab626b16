"""``edidub install resolve [--user] [--uninstall]``: the Resolve scripts into Fusion/Scripts/Edit.

The scripts: *EdiDub Dub Shot*, *EdiDub Dub Timeline* and *EdiDub Adapt to Actor* (:data:`SCRIPT_NAMES`).

cli.py adds the command with one line::

    from plugins.davinci.install import add_install_parser
    add_install_parser(sub)

Each script is copied with its bootstrap block filled in: the folder that holds this
installation's ``edidub_engine`` / ``otio_adapters`` / ``plugins`` packages, this Python's
site-packages (used by Resolve's Python only when its major.minor matches, since pyzmq is a
compiled module) and the exact pyzmq / msgpack / opentimelineio requirements to print when
Resolve's Python cannot import them.  A manifest beside the scripts lists what was written
(and the folders the install created), so ``--uninstall`` removes exactly that.

Folders (Resolve's scripting README):

* macOS: ``/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts``;
  ``--user``: ``~/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts``
* Windows: ``%PROGRAMDATA%\\Blackmagic Design\\DaVinci Resolve\\Fusion\\Scripts``;
  ``--user``: ``%APPDATA%\\Blackmagic Design\\DaVinci Resolve\\Support\\Fusion\\Scripts``
* Linux: ``/opt/resolve/Fusion/Scripts``; ``--user``: ``~/.local/share/DaVinciResolve/Fusion/Scripts``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from edidub_engine.errors import EdidubError, InvalidArgumentError

__all__ = ["SCRIPT_NAMES", "add_install_parser", "install", "scripts_folder", "uninstall"]

HERE = Path(__file__).resolve().parent
SCRIPT_NAMES = ("EdiDub Dub Shot.py", "EdiDub Dub Timeline.py", "EdiDub Adapt to Actor.py")
MENU = "Edit"  # Workspace ▸ Scripts ▸ Edit: the Edit page, where the editor works
MANIFEST = ".edidub-install.json"
_BEGIN, _END = "# >>> edidub bootstrap >>>", "# <<< edidub bootstrap <<<"


def scripts_folder(*, user: bool, platform: str | None = None, env: dict[str, str] | None = None, home: str | None = None) -> Path:
    """Resolve's ``Fusion/Scripts`` folder for this OS, for all users or (``user``) for this one."""
    platform = platform or sys.platform
    env = os.environ if env is None else env
    home = home or os.path.expanduser("~")
    if platform == "darwin":
        base = Path(home) if user else Path("/")
        return base / "Library" / "Application Support" / "Blackmagic Design" / "DaVinci Resolve" / "Fusion" / "Scripts"
    if platform.startswith("win"):
        if user:
            appdata = env.get("APPDATA") or str(Path(home) / "AppData" / "Roaming")
            return Path(appdata) / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts"
        programdata = env.get("PROGRAMDATA") or "C:\\ProgramData"
        return Path(programdata) / "Blackmagic Design" / "DaVinci Resolve" / "Fusion" / "Scripts"
    if user:
        return Path(home) / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts"
    return Path("/opt/resolve/Fusion/Scripts")


def _requirement(dist: str, fallback: str) -> str:
    try:
        return f"{dist}=={metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return fallback


def bootstrap_block() -> str:
    import edidub_engine

    package_root = str(Path(edidub_engine.__file__).resolve().parents[1])
    paths = sysconfig.get_paths()
    site = sorted({paths["purelib"], paths["platlib"]})
    requirements = " ".join(_requirement(d, d) for d in ("pyzmq", "msgpack", "opentimelineio"))
    return "\n".join([
        _BEGIN,
        f"EDIDUB_PATHS = {[package_root]!r}  # written by `edidub install resolve`",
        f"EDIDUB_SITE_PACKAGES = {site!r}",
        f"EDIDUB_PYTHON = {'%d.%d' % sys.version_info[:2]!r}",
        f"EDIDUB_REQUIREMENTS = {requirements!r}",
        _END,
    ])


def _render(source: str, block: str) -> str:
    start, end = source.find(_BEGIN), source.find(_END)
    if start < 0 or end < 0:
        raise EdidubError("the EdiDub Resolve script has no bootstrap block", hint="reinstall edidub-engine")
    return source[:start] + block + source[end + len(_END):]


def install(folder: Path) -> list[Path]:
    """Write the scripts into ``folder/Edit`` (creating folders as needed); returns the files written."""
    target = folder / MENU
    created = []
    for directory in reversed([target, *target.parents]):
        if not directory.exists():
            created.append(directory)
    try:
        target.mkdir(parents=True, exist_ok=True)
        block = bootstrap_block()
        written = []
        for name in SCRIPT_NAMES:
            text = _render((HERE / "scripts" / name).read_text(encoding="utf-8"), block)
            (target / name).write_text(text, encoding="utf-8")
            written.append(target / name)
        manifest = {"files": [p.name for p in written], "created_folders": [str(d) for d in created]}
        (target / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    except PermissionError as exc:
        raise InvalidArgumentError(f"cannot write to {exc.filename or target}", hint="run as an administrator, or add --user") from None
    return written


def uninstall(folder: Path) -> list[Path]:
    """Remove what :func:`install` wrote into ``folder`` and the folders it created (when empty)."""
    target = folder / MENU
    manifest_path = target / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {"files": list(SCRIPT_NAMES), "created_folders": []}
    removed = []
    try:
        for name in manifest.get("files", []):
            path = target / Path(name).name
            if path.is_file():
                path.unlink()
                removed.append(path)
        cache = target / "__pycache__"  # Resolve's Python may have compiled them
        if cache.is_dir():
            for pyc in cache.glob("EdiDub *.pyc"):
                pyc.unlink()
            if not any(cache.iterdir()):
                cache.rmdir()
        if manifest_path.exists():
            manifest_path.unlink()
        for directory in sorted((Path(d) for d in manifest.get("created_folders", [])), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
    except PermissionError as exc:
        raise InvalidArgumentError(f"cannot remove {exc.filename or target}", hint="run as an administrator, or add --user") from None
    return removed


def _cmd_install(args: argparse.Namespace) -> int:
    if args.app != "resolve":  # pragma: no cover - argparse choices
        raise InvalidArgumentError(f"unknown application {args.app!r}")
    folder = Path(args.scripts_dir) if args.scripts_dir else scripts_folder(user=args.user)
    if args.uninstall:
        removed = uninstall(folder)
        print(f"removed {len(removed)} EdiDub script(s) from {folder / MENU}" if removed else f"no EdiDub scripts in {folder / MENU}")
        return 0
    for path in install(folder):
        print(f"wrote {path}")
    print("In Resolve: Workspace ▸ Scripts ▸ Edit ▸ EdiDub Dub Shot / EdiDub Dub Timeline / EdiDub Adapt to Actor "
          "(restart Resolve to see them).")
    print("They talk to the daemon: start it with `edidub serve --media-root <media folder>`.")
    return 0


def add_install_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``install`` (``edidub install resolve [--user] [--uninstall]``) on ``subparsers``."""
    parser = subparsers.add_parser(
        "install",
        help="put the NLE scripts in place (DaVinci Resolve: Workspace ▸ Scripts ▸ Edit)",
        description="Copy the EdiDub scripts into Resolve's Fusion/Scripts/Edit folder, pointed at this installation; "
        "--uninstall removes them.",
    )
    parser.add_argument("app", choices=["resolve"], help="the application")
    parser.add_argument("--user", action="store_true", help="this user's scripts folder instead of the all-users one")
    parser.add_argument("--uninstall", action="store_true", help="remove the scripts this command installed")
    parser.add_argument("--scripts-dir", metavar="DIR", help="a Fusion/Scripts folder other than the standard one")
    parser.set_defaults(func=_cmd_install)
