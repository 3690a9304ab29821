"""Content negotiation the endpoints share: the values of an ``Accept`` or ``Accept-Language``
header, the most wanted first (RFC 9110 section 12.4.2 weights)."""

from __future__ import annotations


def ranked(header: str | None) -> list[str]:
    """The values of ``header``, the most wanted first: ``en;q=0.5, zh-CN`` gives
    ``["zh-CN", "en"]``. ``*``, ``*/*`` and ``q=0`` are left out; ties keep their order; a
    weight that is not a number counts as 0."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")):
        tag, *parameters = (piece.strip() for piece in part.split(";"))
        weight = next((_weight(p[2:]) for p in parameters if p.startswith("q=")), 1.0)
        if tag not in ("", "*", "*/*") and weight > 0:
            weighted.append((-weight, index, tag))
    return [tag for _, _, tag in sorted(weighted)]


def _weight(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0
