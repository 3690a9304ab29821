"""The engine's own API served for tests: the example program, keys of each scope, and a
client that sends them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from live_server import http_runtime, live_server

from core.http.auth import SCOPES, create_key
from core.runtime import Runtime


@dataclass(frozen=True)
class Api:
    base: str
    runtime: Runtime
    keys: dict[str, str]  # scope → a key with only that scope

    def call(
        self, method: str, path: str, *, scope: str | None = "admin", **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if scope is not None:
            headers.setdefault("Authorization", f"Bearer {self.keys[scope]}")
        return httpx.request(method, f"{self.base}{path}", headers=headers, timeout=60, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("POST", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("GET", path, **kwargs)


def runtime_with_keys(
    db_url: str, program_dir: Path, folder: Path, **settings: object
) -> tuple[Runtime, dict[str, str]]:
    runtime = http_runtime(db_url, program_dir, folder, **settings)
    keys = {scope: create_key(runtime.engine, f"{scope} key", [scope])[1] for scope in SCOPES}
    return runtime, keys


@contextmanager
def served(
    db_url: str, examples: Path, folder: Path, *, app: Any = None, **settings: object
) -> Iterator[Api]:
    """The example program on ``db_url`` behind uvicorn; ``app(runtime)`` may build the app."""
    runtime, keys = runtime_with_keys(db_url, examples / "program", folder, **settings)
    built: FastAPI | None = app(runtime) if app is not None else None
    with live_server(runtime, built) as base:
        yield Api(base, runtime, keys)
