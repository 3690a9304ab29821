"""``POST /v1/events`` and ``GET /v1/members/{id}`` (filled in by the HTTP API work)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
