"""``campaigns report ID --html FILE``: the report as one self-contained page.

No network: no scripts, fonts or style sheets from elsewhere; the style is inline and the charts
are inline SVG (a funnel, the conversion rate by arm with its interval, conversions per day).
Every figure drawn carries its number (``data-value``, ``data-low``, ``data-high``) exactly as
``--json`` prints it, so what the page shows can be checked against the JSON.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.report import CampaignReport

WIDTH = 640
BAR = 28
STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:720px;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}tr:nth-child(even){background:#f4f4f4}
svg text{font-size:12px}.note{color:#555}
"""


def write_html(report: CampaignReport, path: Path, *, zone: str) -> None:
    """Write the report's page to ``path`` (UTF-8)."""
    path.write_text(render_html(report, zone=zone), encoding="utf-8")


def render_html(report: CampaignReport, *, zone: str) -> str:
    """The report's page."""
    data = report.as_dict()
    when = f"{report.generated_at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Campaign report: {_e(report.campaign_id)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{_e(report.campaign_id)}: {_e(report.name)}</h1>",
        f'<p class="note">As of {_e(when)}. Revenue is net of refunds.</p>',
        "<h2>Funnel</h2>",
        funnel_svg(data["funnel"]),
        "<h2>Conversion rate by arm (95% Wilson interval)</h2>",
        rate_svg(data["arms"]),
        _arms_table(data["arms"]),
        "<h2>Lift over the holdout</h2>",
        _lift_section(data),
        "<h2>Conversions per day</h2>",
        days_svg(data["conversions_per_day"]),
        "<h2>Messages</h2>",
        _messages_table(data["messages"], data["suppressions"]),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def funnel_svg(funnel: dict[str, int]) -> str:
    """Entered → messaged → converted, one bar each, widths relative to the entered."""
    top = max(funnel.values()) or 1
    rows = []
    for index, (stage, value) in enumerate(funnel.items()):
        y = index * (BAR + 8)
        width = max(1.0, (WIDTH - 200) * value / top)
        rows.append(
            f'<g class="funnel-stage" data-stage="{stage}" data-value="{value}">'
            f'<text x="0" y="{y + 18}">{stage}</text>'
            f'<rect x="90" y="{y}" width="{width:.1f}" height="{BAR}" fill="#4a7fb5"/>'
            f'<text x="{96 + width:.1f}" y="{y + 18}">{value}</text></g>'
        )
    return _svg("funnel", len(funnel) * (BAR + 8), rows)


def rate_svg(arms: list[dict[str, Any]]) -> str:
    """Each arm's rate as a bar, its interval as a line with end ticks."""
    shown = [arm for arm in arms if arm["rate"] is not None]
    scale = max([arm["rate_high"] for arm in shown] + [0.01])
    span = WIDTH - 240
    rows = []
    for index, arm in enumerate(shown):
        y, x = index * (BAR + 8), lambda v: 110 + span * v / scale
        low, high = x(arm["rate_low"]), x(arm["rate_high"])
        rows.append(
            f'<g class="arm-rate" data-arm="{_e(arm["arm"])}" data-value="{arm["rate"]!r}" '
            f'data-low="{arm["rate_low"]!r}" data-high="{arm["rate_high"]!r}">'
            f'<text x="0" y="{y + 18}">{_e(arm["arm"])}</text>'
            f'<rect x="110" y="{y + 4}" width="{x(arm["rate"]) - 110:.1f}" height="{BAR - 8}" '
            f'fill="#6aa66a"/>'
            f'<line x1="{low:.1f}" x2="{high:.1f}" y1="{y + 14}" y2="{y + 14}" stroke="#222"/>'
            f'<line x1="{low:.1f}" x2="{low:.1f}" y1="{y + 6}" y2="{y + 22}" stroke="#222"/>'
            f'<line x1="{high:.1f}" x2="{high:.1f}" y1="{y + 6}" y2="{y + 22}" stroke="#222"/>'
            f'<text x="{high + 6:.1f}" y="{y + 18}">{arm["rate"] * 100:.1f}%</text></g>'
        )
    if not rows:
        rows.append('<text x="0" y="18">no entrants yet</text>')
    return _svg("rates", max(1, len(shown)) * (BAR + 8), rows)


def days_svg(per_day: dict[str, int]) -> str:
    """One column per business day, heights relative to the busiest day."""
    height, top = 160, max(per_day.values(), default=0) or 1
    step = (WIDTH - 20) / max(1, len(per_day))
    rows = []
    for index, (day, value) in enumerate(per_day.items()):
        h = (height - 30) * value / top
        rows.append(
            f'<g class="day" data-day="{day}" data-value="{value}"><title>{day}: {value}</title>'
            f'<rect x="{10 + index * step:.1f}" y="{height - 20 - h:.1f}" '
            f'width="{max(1.0, step - 2):.1f}" height="{h:.1f}" fill="#b5854a"/></g>'
        )
    if per_day:
        first, last = next(iter(per_day)), list(per_day)[-1]
        rows.append(f'<text x="10" y="{height - 4}">{first}</text>')
        rows.append(f'<text x="{WIDTH - 90}" y="{height - 4}">{last}</text>')
    else:
        rows.append('<text x="10" y="18">no conversions yet</text>')
    return _svg("per-day", height, rows)


def _svg(name: str, height: int, rows: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{name}" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img">' + "".join(rows) + "</svg>"
    )


def _arms_table(arms: list[dict[str, Any]]) -> str:
    head = "<tr><th>arm</th><th>entered</th><th>messaged</th><th>conversions</th><th>rate</th>"
    head += "<th>95% interval</th><th>revenue</th><th>per entrant</th></tr>"
    rows = [
        f"<tr><td>{_e(a['arm'])}</td><td>{a['entered']}</td><td>{a['messaged']}</td>"
        f"<td>{a['conversions']}</td><td>{_pct(a['rate'])}</td>"
        f"<td>{_pct(a['rate_low'])} – {_pct(a['rate_high'])}</td><td>{a['revenue']}</td>"
        f"<td>{a['revenue_per_entrant'] or '-'}</td></tr>"
        for a in arms
    ]
    return "<table>" + head + "".join(rows) + "</table>"


def _lift_section(data: dict[str, Any]) -> str:
    if data["lift_note"]:
        return f'<p class="note">{_e(data["lift_note"])}</p>'
    head = "<tr><th>arm</th><th>lift</th><th>95% Newcombe interval</th><th>p-value</th>"
    head += "<th>significant at 5%</th></tr>"
    rows = [
        f'<tr class="lift" data-arm="{_e(lift["arm"])}" data-value="{lift["difference"]!r}" '
        f'data-low="{lift["low"]!r}" data-high="{lift["high"]!r}">'
        f"<td>{_e(lift['arm'])}</td><td>{lift['difference'] * 100:+.1f} pts</td>"
        f"<td>{lift['low'] * 100:+.1f} to {lift['high'] * 100:+.1f} pts</td>"
        f"<td>{_p(lift['p_value'])}</td><td>{'yes' if lift['significant'] else 'no'}</td></tr>"
        for lift in data["lifts"]
    ]
    return "<table>" + head + "".join(rows) + "</table>"


def _messages_table(messages: dict[str, dict[str, int]], suppressions: dict[str, int]) -> str:
    rows = [
        f"<tr><td>{_e(channel)}</td><td>{_e(status)}</td><td>{count}</td></tr>"
        for channel, counts in sorted(messages.items())
        for status, count in sorted(counts.items())
    ]
    head = "<table><tr><th>channel</th><th>status</th><th>messages</th></tr>"
    table = head + "".join(rows) + "</table>" if rows else '<p class="note">no messages</p>'
    listed = ", ".join(f"{_e(reason)} {n}" for reason, n in suppressions.items()) or "none"
    return table + f"<p>Suppressed: {listed}</p>"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _e(text: str) -> str:
    return escape(str(text), quote=True)
