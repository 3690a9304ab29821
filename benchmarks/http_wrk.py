"""A closed loop by `wrk <https://github.com/wg/wrk>`_ (C, one thread), when it is installed
(Debian's package ``wrk``): the same requests as :func:`benchmarks.http_load.closed_loop`,
from a generator that takes a tenth of the CPU aiohttp takes per request, so on a machine the
server shares with its load more of the cores are left to the server. ``wrk`` counts a
request that got no 2xx or 3xx, and a socket error or timeout, as an error.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_PERCENTILE = re.compile(r"^\s*(50|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_LATENCY = re.compile(r"^\s*Latency\s+([\d.]+)(us|ms|s|m)\s+\S+\s+([\d.]+)(us|ms|s|m)", re.M)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def available() -> bool:
    return shutil.which("wrk") is not None


def closed_loop(
    base: str, key: str, path: str, body: bytes, *, concurrency: int, duration: float
) -> dict[str, Any]:
    """``concurrency`` connections back to back for ``duration`` seconds (``wrk --latency``)."""
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "post.lua"
        script.write_text(_lua(key, body), encoding="utf-8")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        command = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s",
                   "--latency", "--timeout", "10s", "-s", str(script), base + path]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return parse(output, concurrency=concurrency) | {
        "generator": "wrk",
        "generator_cpu_s": round(
            after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2
        ),
    }


def parse(output: str, *, concurrency: int) -> dict[str, Any]:
    """What one ``wrk --latency`` run printed, in :func:`benchmarks.http_load.closed_loop`'s
    shape (max is wrk's; mean its average)."""
    total = _TOTAL.search(output)
    if total is None:
        raise RuntimeError(f"wrk printed no request count:\n{output}")
    requests, seconds = int(total[1]), float(total[2]) * _UNITS[total[3]] / 1e3
    non_2xx = int(match[1]) if (match := _NON_2XX.search(output)) else 0
    socket = sum(map(int, match.groups())) if (match := _SOCKET.search(output)) else 0
    errors = non_2xx + socket
    ok = max(0, requests - non_2xx)
    found = {int(p): round(float(v) * _UNITS[u], 3) for p, v, u in _PERCENTILE.findall(output)}
    latency = _LATENCY.search(output)
    mean = round(float(latency[1]) * _UNITS[latency[2]], 3) if latency else None
    most = round(float(latency[3]) * _UNITS[latency[4]], 3) if latency else None
    return {
        "concurrency": concurrency,
        "duration_s": round(seconds, 2),
        "ok": ok,
        "errors": errors,
        "error_kinds": {"non-2xx": non_2xx, "socket": socket},
        "achieved_per_s": round(ok / seconds, 1) if seconds else 0.0,
        "latency": {
            "p50_ms": found.get(50),
            "p90_ms": found.get(90),
            "p99_ms": found.get(99),
            "max_ms": most,
            "mean_ms": mean,
        },
    }


def _lua(key: str, body: bytes) -> str:
    text = body.decode("utf-8")
    if "]]" in text:
        raise ValueError("the body holds ']]', which a Lua long string cannot")
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = [[{text}]]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    )
