"""What machine a benchmark ran on (shared by the benchmark scripts, which run as plain scripts)."""
from __future__ import annotations

import platform
import subprocess


def cpu_model() -> str:
    """``lscpu``'s model name, else ``platform.processor()``."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model
