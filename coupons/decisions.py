"""A rule's verdict: ``Decision(ok, code, params)``; :data:`PASS` when there is nothing to say."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

_NO_PARAMS: Mapping[str, Any] = MappingProxyType({})


class Decision(NamedTuple):
    """A condition's verdict: ``ok``, a reason code and the parameters its text needs."""

    ok: bool
    code: str
    params: Mapping[str, Any] = _NO_PARAMS


PASS = Decision(True, "ok")
