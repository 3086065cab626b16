"""EdiDub ▸ Adapt to Actor: fine-tune a model on the selected takes of one actor; the project's dubs then use it.

Run from Workspace ▸ Scripts ▸ Edit in DaVinci Resolve.  `edidub install resolve` puts this
file there and fills in the bootstrap block below; the work is in plugins/davinci/resolve_bridge.py.
"""

# >>> edidub bootstrap >>>
EDIDUB_PATHS = []  # folders that hold edidub_engine, otio_adapters and plugins
EDIDUB_SITE_PACKAGES = []  # the installation's site-packages, used only when the Python versions match
EDIDUB_PYTHON = ""  # major.minor of the installation's Python
EDIDUB_REQUIREMENTS = "pyzmq msgpack opentimelineio"
# <<< edidub bootstrap <<<

import sys


def _edidub_bridge():
    for path in EDIDUB_PATHS:
        if path not in sys.path:
            sys.path.insert(0, path)
    if EDIDUB_PYTHON == "%d.%d" % sys.version_info[:2]:
        for path in EDIDUB_SITE_PACKAGES:
            if path not in sys.path:
                sys.path.append(path)
    missing = []
    for module, package in (("zmq", "pyzmq"), ("msgpack", "msgpack"), ("opentimelineio", "opentimelineio")):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        wanted = " ".join(r for r in EDIDUB_REQUIREMENTS.split() if r.split("=")[0] in missing) or " ".join(missing)
        print("[EdiDub] Resolve's Python (%s, %s) cannot import %s.\n[EdiDub] Install it for that Python:\n"
              "    \"%s\" -m pip install %s\n[EdiDub] then run the script again."
              % (sys.version.split()[0], sys.executable, ", ".join(missing), sys.executable, wanted))
        return None
    try:
        from plugins.davinci import resolve_bridge
    except ImportError as exc:
        print("[EdiDub] cannot find the EdiDub installation (%s); run `edidub install resolve` again." % exc)
        return None
    return resolve_bridge


bridge = _edidub_bridge()
report = bridge.run_menu_script("adapt_to_actor", globals()) if bridge is not None else None
