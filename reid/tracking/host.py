"""Which machine and process a record belongs to: a recorded pid is only checked on the machine that wrote it.

Torch- and Hydra-free, beside ``run_info.py``; the sweep callback and the resumable Optuna sweeper both use it.
"""
from __future__ import annotations

import os
import socket


def machine_id() -> str:
    """This host's name plus, on Linux, its PID namespace: a recorded pid is only checked where it means something.

    Containers that share a hostname (host networking) have their own pid namespaces; without it a sweep in one
    would take the other's live trials for orphans.
    """
    host = socket.gethostname()
    try:
        return f"{host}/pidns-{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return host


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a zombie counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True
