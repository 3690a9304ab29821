"""The served engine of ``benchmarks/bench_http.py``: ``loyalty-engine serve`` as a subprocess on
a free loopback port, the CPU time of its process tree, and the benchmark's Redis keys."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from benchmarks.http_shop import Shop

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
# Counted like any key's, but never reached: the benchmark measures the path, not the refusal.
RATE_LIMIT = 100_000_000
# What the served engine leaves in Redis: dramatiq's queues and the per-key rate buckets.
REDIS_PATTERNS = ("dramatiq:*", "loyalty:rate:*")


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@contextmanager
def serving(
    shop: Shop, pg_url: str, redis_url: str, work: Path, *, workers: int
) -> Iterator[Server]:
    """``loyalty-engine serve --workers N`` until the block ends (then stopped as Ctrl-C does)."""
    port = free_port()
    env = os.environ | {
        "LOYALTY_DATABASE_URL": pg_url,
        "LOYALTY_REDIS_URL": redis_url,
        "LOYALTY_PROGRAM_DIR": str(shop.program_dir),
        "LOYALTY_OUTBOX": str(work / "outbox.jsonl"),
        "LOYALTY_API_RATE_LIMIT": str(RATE_LIMIT),
    }
    command = [*_cli(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    log_path = work / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=work, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_live(url, process, log_path)
        yield Server(url, process.pid)
    finally:
        _stop(process)


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "loyalty-engine"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from core.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_live(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"serve was not ready within {START_TIMEOUT_S:g} s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-30:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ProcessTreeCpu:
    """CPU seconds of a process and all its descendants, read from /proc (0 where unreadable).
    A process that ended since the last read no longer counts: read while the tree runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def read(self) -> float:
        parents = _parents()
        tree, frontier = {self.pid}, [self.pid]
        while frontier:
            children = [pid for pid, parent in parents.items() if parent in frontier]
            tree.update(children)
            frontier = children
        return sum(_cpu_seconds(pid) for pid in tree)


def _parents() -> dict[int, int]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:
                found[int(entry.name)] = int(fields[1])
    return found


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, ppid, …)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    if not fields:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def clear_redis(redis_url: str) -> None:
    """Delete what a served engine left in the benchmark's Redis database."""
    client = redis.Redis.from_url(redis_url)
    for pattern in REDIS_PATTERNS:
        for key in client.scan_iter(match=pattern):
            client.delete(key)
