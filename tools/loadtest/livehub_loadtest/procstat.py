"""Server and self cost from /proc: CPU seconds and RSS of a process tree (Linux only)."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("latin-1")
    except OSError:
        return None
    # comm may hold spaces and parentheses: the fields start after the last ")".
    return raw[raw.rfind(")") + 2 :].split()


def parse_stat_cpu_ticks(fields: list[str]) -> int:
    """utime + stime + cutime + cstime from the fields after comm (state is field 0)."""
    return int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])


def descendants(root: int) -> list[int]:
    """``root`` and every live descendant (scans /proc once)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def tree_cpu_seconds(roots: Iterable[int]) -> float:
    """CPU seconds (all threads, plus reaped and live children) of the trees at ``roots``."""
    ticks = 0
    for root in roots:
        for pid in descendants(root):
            fields = _stat_fields(pid)
            if fields is not None:
                ticks += parse_stat_cpu_ticks(fields)
    return ticks / CLK_TCK


def tree_rss_kb(roots: Iterable[int]) -> int:
    """Resident set size in KB, summed over the trees at ``roots``."""
    total = 0
    for root in roots:
        for pid in descendants(root):
            try:
                with open(f"/proc/{pid}/status", "rb") as f:
                    for line in f:
                        if line.startswith(b"VmRSS:"):
                            total += int(line.split()[1])
                            break
            except OSError:
                continue
    return total


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Sample:
    cpu_s: float
    rss_kb: int


def sample(roots: Iterable[int]) -> Sample | None:
    roots = list(roots)
    if not roots:
        return None
    return Sample(tree_cpu_seconds(roots), tree_rss_kb(roots))


def pid_alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def raise_nofile_limit() -> int:
    """Raise this process's RLIMIT_NOFILE soft limit to the hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20  # the kernel's usual nr_open ceiling
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages (how busy the machine was otherwise)."""
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return []
