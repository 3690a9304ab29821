"""benchmarks.http_wrk reads what wrk prints (the parse is checked on wrk's own output format,
so it runs wherever the tests do, wrk installed or not)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[2])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import http_wrk  # noqa: E402

OUTPUT = """Running 10s test @ http://127.0.0.1:41235/v1/checkout/validate
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    21.52ms   10.11ms  73.91ms   70.12%
    Req/Sec     1.71k   101.46     1.85k    80.00%
  Latency Distribution
     50%   23.19ms
     75%   27.00ms
     90%   33.40ms
     99%  512.00us
  17080 requests in 10.01s, 190.23MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:   1706.79
Transfer/sec:     19.00MB
"""


def test_wrk_output_becomes_a_closed_loop_result() -> None:
    found = http_wrk.parse(OUTPUT, concurrency=32)

    assert found["ok"] == 17075 and found["errors"] == 8
    assert found["error_kinds"] == {"non-2xx": 5, "socket": 3}
    assert found["duration_s"] == 10.01
    assert found["achieved_per_s"] == round(17075 / 10.01, 1)
    assert found["latency"] == {"p50_ms": 23.19, "p90_ms": 33.4, "p99_ms": 0.512,
                                "max_ms": 73.91, "mean_ms": 21.52}  # fmt: skip


def test_output_without_a_request_count_is_an_error() -> None:
    try:
        http_wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n", concurrency=1)
    except RuntimeError as exc:
        assert "no request count" in str(exc)
    else:
        raise AssertionError("no error")
