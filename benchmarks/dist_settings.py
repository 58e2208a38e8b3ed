"""Small helpers of distributed_throughput.py: the setting syntax and per-process memory."""

from __future__ import annotations

import os


def parse_setting(text: str) -> tuple[int, int, str]:
    """'2x1' -> (2, 1, 'none'); '2x1fsdp' -> (2, 1, 'fsdp')."""
    sharding = "fsdp" if text.endswith("fsdp") else "none"
    body = text.removesuffix("fsdp")
    try:
        processes, threads = (int(x) for x in body.split("x"))
    except ValueError:
        raise SystemExit(
            f"Bad setting {text!r}: write PROCESSESxTHREADS, e.g. 2x1, optionally + fsdp (2x1fsdp)."
        ) from None
    return processes, threads, sharding


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc), in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
