"""Errors a user can fix, reported as one line without a traceback, and the exit codes of the entry points.

Missing or badly laid-out data, missing weights, bad run or checkpoint paths, config values that fail validation and a
non-finite stop are the user's to fix: the entry points print ``error: <message>`` and exit with
:data:`EXIT_USER_ERROR`. The full traceback appears with ``HYDRA_FULL_ERROR=1`` or ``debug=true``. Anything else is
a bug and keeps its traceback.
"""
from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT (Ctrl-C), as a shell reports it
EXIT_PREEMPTED = 143    # 128 + SIGTERM: a checkpoint was written, the run resumes


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean "fix your input", imported lazily (each lives beside the code that raises it)."""
    from reid.build.run_config import RunLoadError
    from reid.config import ConfigError
    from reid.data.errors import DatasetError
    from reid.engine.faults import NonFiniteLossError
    from reid.engine.init_weights import InitWeightsError
    from reid.models.clip_loader import ModelWeightsError
    from reid.weights.clipreid_layout import LayoutError
    from reid.weights.openai_files import OpenAIFileError

    return (ConfigError, DatasetError, ModelWeightsError, RunLoadError, NonFiniteLossError, InitWeightsError,
            LayoutError, OpenAIFileError, FileNotFoundError, FileExistsError)


def full_trace_wanted(traceback_flag: bool = False) -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1" or bool(traceback_flag)


def one_line(err: BaseException) -> str:
    return f"error: {err}"


def resume_command(run_dir: str | Path, argv: Sequence[str] | None = None, module: str = "reid.train") -> str:
    """The command line that continues the run in ``run_dir``: this one, with ``resume=<run_dir>``."""
    args = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith(("resume=", "+resume="))]
    return shlex.join(["python", "-m", module, *args, f"resume={run_dir}"])


def sweep_command(argv: Sequence[str] | None = None, module: str = "reid.train") -> str:
    """This command line as a multirun (``-m`` first), for a sweep preset started without it."""
    args = [a for a in (sys.argv[1:] if argv is None else argv) if a not in ("-m", "--multirun")]
    return shlex.join(["python", "-m", module, "-m", *args])


@contextlib.contextmanager
def exit_on_user_error(traceback: bool = False) -> Iterator[None]:
    """Around an entry point's body: a user error becomes ``error: <message>`` and exit code 2; a bug propagates."""
    try:
        yield
    except Exception as err:
        if not isinstance(err, user_errors()) or full_trace_wanted(traceback):
            raise
        print(one_line(err), file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)
