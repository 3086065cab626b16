"""``edidub batch``: dub every shot of an OTIO timeline — in-process, through the daemon, or on Ray — resumably.

See :mod:`.core` for the modes and the resume rules, :mod:`.ray_runner` for the Ray actors and
:mod:`otio_adapters.batch` for the shared plan / write-back.  Importing this package imports
neither torch nor Ray.
"""

from .core import BatchConfig, BatchResult, BatchState, default_output, run_batch, state_path_for

__all__ = ["BatchConfig", "BatchResult", "BatchState", "default_output", "run_batch", "state_path_for"]
