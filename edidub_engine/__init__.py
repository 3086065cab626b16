"""EdiDub Engine: visual dubbing as content-aware video editing.

The package is a library first (``edidub_engine.media``, ``.face``, …) and a
command line second (``edidub``).  Importing it loads no model and no heavy
dependency.
"""

__version__ = "0.1.0"
