"""The account's own activity over time, drawn against the compromise window the owner claims.

`collect` reads the account's rows from every published dataset; `build` turns rows into plain chart
geometry (weekly bars, the shaded window, splits by posting client, by language and by hour of day) that
a template draws as SVG on the server. No chart runtime runs in the browser.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from appeals import runtime
from appeals.requests import number_problem

WIDTH = 720  # SVG user units; the picture scales to its container
LEFT = 44
RIGHT = 8
TOP = 8
MAIN_HEIGHT = 150
SMALL_HEIGHT = 36
AXIS = 22
TOP_SERIES = 4  # clients or languages drawn one by one; the rest are "other"
ROWS_LIMIT = 200_000  # rows read per dataset for the workspace


@dataclass(frozen=True)
class Window:
    """The claimed compromise window, both days included; either end may be unknown."""

    start: date | None
    end: date | None

    def contains(self, day: date) -> bool:
        """True when `day` falls inside the window (an open end reaches the edge of the data)."""
        if self.start is None and self.end is None:
            return False
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


def tweet_day(row: dict) -> date | None:
    """The day of a row's tweet_time ('YYYY-MM-DD HH:MM'), or None when it has none."""
    raw = (row.get("tweet_time") or "").strip()
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return None


def tweet_hour(row: dict) -> int | None:
    """The UTC hour of a row's tweet_time, or None."""
    raw = (row.get("tweet_time") or "").strip()
    try:
        return datetime.fromisoformat(raw[:16]).hour if len(raw) >= 13 else None
    except ValueError:
        return None


def collect(user_id: str, datasets: list[str]) -> list[dict]:
    """Every row of the account in the licensed (unhashed) variant of `datasets`, tagged with dataset and kind."""
    engine = runtime.engine()
    rows = []
    for name in datasets:
        found = engine.samples(user_id, name, limit=ROWS_LIMIT).get("unhashed") or {}
        for kind in ("authored", "referring"):
            for row in found.get(kind) or []:
                rows.append({**row, "_dataset": name, "_kind": kind})
    rows.sort(key=lambda r: (r.get("tweet_time") or "", r.get("tweetid") or ""))
    return rows


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _ticks(first: date, weeks: int, x_of) -> list[dict]:
    """Axis labels: years for long spans, months for shorter ones, at most about 10."""
    last = first + timedelta(weeks=weeks)
    labels = []
    if weeks > 104:
        for year in range(first.year + 1, last.year + 1):
            labels.append((date(year, 1, 1), str(year)))
    else:
        step = max(1, weeks // 40 + 1)
        month = date(first.year, first.month, 1)
        while month <= last:
            if month > first and (month.month - 1) % step == 0:
                labels.append((month, month.strftime("%b %Y")))
            month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    stride = max(1, -(-len(labels) // 10))
    return [{"x": round(x_of(d), 2), "label": text} for d, text in labels[::stride]]


def build(rows: list[dict], window: Window) -> dict:
    """Chart geometry for the account's authored rows: weekly bars across every dataset, the window's
    rectangle, small multiples per client and per language, hours of day before vs during the window,
    and the same figures as tables."""
    authored = [(r, tweet_day(r)) for r in rows if r.get("_kind", "authored") == "authored"]
    authored = [(r, d) for r, d in authored if d is not None]
    days = [d for _, d in authored] + [d for d in (window.start, window.end) if d is not None]
    if not days:
        return {"empty": True, "width": WIDTH}
    first, last = _monday(min(days)), _monday(max(days))
    weeks = (last - first).days // 7 + 1
    plot = WIDTH - LEFT - RIGHT
    bar = plot / weeks

    def x_of(day: date) -> float:
        return LEFT + (day - first).days / 7 * bar

    per_week = Counter((d - first).days // 7 for _, d in authored)
    peak = max(per_week.values(), default=0) or 1

    def bars(counter: Counter, height: float, top: float, scale_peak: int) -> list[dict]:
        out = []
        for i in sorted(counter):
            start = first + timedelta(weeks=i)
            h = counter[i] / scale_peak * height
            out.append({"x": round(LEFT + i * bar, 2), "width": round(max(bar - (1 if bar > 3 else 0), 0.8), 2),
                        "y": round(top + height - h, 2), "height": round(h, 2), "count": counter[i],
                        "week": start.isoformat(),
                        "inside": window.contains(start) or window.contains(start + timedelta(days=6))})
        return out

    shade = None
    if window.start or window.end:
        start = window.start or first
        end = (window.end or last + timedelta(days=6)) + timedelta(days=1)
        shade = {"x": round(x_of(start), 2), "width": round(max(x_of(end) - x_of(start), 1), 2),
                 "start": window.start.isoformat() if window.start else None,
                 "end": window.end.isoformat() if window.end else None}

    def split(field: str) -> list[dict]:
        totals = Counter((r.get(field) or "unknown") for r, _ in authored)
        names = [name for name, _ in totals.most_common(TOP_SERIES)]
        series = []
        groups = names + (["other"] if len(totals) > len(names) else [])
        counters = {name: Counter() for name in groups}
        phases = {name: Counter() for name in groups}
        for r, d in authored:
            name = r.get(field) or "unknown"
            name = name if name in counters else "other"
            counters[name][(d - first).days // 7] += 1
            phases[name][_phase(d, window)] += 1
        group_peak = max((max(c.values(), default=0) for c in counters.values()), default=0) or 1
        for name in groups:
            series.append({"name": name, "total": sum(counters[name].values()),
                           "bars": bars(counters[name], SMALL_HEIGHT, 4, group_peak),
                           "before": phases[name]["before"], "during": phases[name]["during"],
                           "after": phases[name]["after"]})
        return series

    hours = {"before": Counter(), "during": Counter()}
    for r, d in authored:
        hour = tweet_hour(r)
        phase = _phase(d, window)
        if hour is not None and phase in hours:
            hours[phase][hour] += 1
    hour_rows = []
    totals = {phase: sum(c.values()) or 1 for phase, c in hours.items()}
    share_peak = max([hours[p][h] / totals[p] for p in hours for h in range(24)] + [0.01])
    slot = plot / 24
    for h in range(24):
        row = {"hour": h, "x": round(LEFT + h * slot, 2)}
        for k, phase in enumerate(("before", "during")):
            share = hours[phase][h] / totals[phase]
            height = share / share_peak * (MAIN_HEIGHT - 30)
            row[phase] = {"count": hours[phase][h], "share": round(share * 100, 1),
                          "x": round(LEFT + h * slot + 1 + k * (slot - 2) / 2, 2), "width": round((slot - 2) / 2, 2),
                          "y": round(TOP + (MAIN_HEIGHT - 30) - height, 2), "height": round(height, 2)}
        hour_rows.append(row)

    week_table = [{"week": b["week"], "count": b["count"], "inside": b["inside"]}
                  for b in bars(per_week, MAIN_HEIGHT, TOP, peak)]
    return {
        "empty": False,
        "width": WIDTH, "left": LEFT, "top": TOP, "plot_width": plot,
        "main_height": MAIN_HEIGHT, "small_height": SMALL_HEIGHT, "axis": AXIS,
        "first_week": first.isoformat(), "last_week": last.isoformat(), "weeks": weeks, "peak": peak,
        "bars": bars(per_week, MAIN_HEIGHT, TOP, peak),
        "shade": shade,
        "ticks": _ticks(first, weeks, x_of),
        "clients": split("tweet_client_name"),
        "languages": split("tweet_language"),
        "hours": hour_rows,
        "hour_totals": {p: sum(c.values()) for p, c in hours.items()},
        "week_table": week_table,
        "authored": len(authored),
        "inside": sum(1 for _, d in authored if window.contains(d)),
    }


def _phase(day: date, window: Window) -> str:
    if window.start is None and window.end is None:
        return "before"
    if window.contains(day):
        return "during"
    if window.start is not None and day < window.start:
        return "before"
    return "after"


def filter_rows(rows: list[dict], window: Window, where: str = "", kind: str = "", dataset: str = "",
                page: int = 1, per_page: int = 50) -> dict:
    """One page of the account's rows filtered by window (inside/outside), kind (authored/referring), dataset."""
    chosen = []
    for row in rows:
        day = tweet_day(row)
        inside = day is not None and window.contains(day)
        if where == "inside" and not inside or where == "outside" and inside:
            continue
        if kind and row.get("_kind") != kind or dataset and row.get("_dataset") != dataset:
            continue
        chosen.append({**row, "_inside": inside})
    pages = max(1, -(-len(chosen) // per_page))
    page = min(max(1, page), pages)
    return {"rows": chosen[(page - 1) * per_page: page * per_page], "total": len(chosen), "page": page,
            "pages": pages, "per_page": per_page}


ROW_FILTERS = {"where": ("", "inside", "outside"), "kind": ("", "authored", "referring")}


def workspace(principal, appeal_id, args) -> dict:
    """The reviewer's evidence workspace for one appeal: the chart, one filtered page of rows, the files.

    `args` holds the row filters (where, kind, dataset, page) as strings; unknown values fall back to all.
    """
    from appeals import db
    from appeals.models import Appeal
    from appeals.services import evidence, policy
    from appeals.services.errors import NotFound

    appeal = db.session.get(Appeal, int(appeal_id))
    if appeal is None:
        raise NotFound("No such appeal.")
    policy.authorize(principal, "appeal.view", appeal)
    window = Window(appeal.compromised_from, appeal.compromised_until)
    names = sorted({d.dataset for d in appeal.datasets} | _current_datasets(appeal.account.user_id))
    error = None
    try:
        rows = collect(appeal.account.user_id, names)
    except Exception as exc:  # the engine may be unreadable; the decision must still be possible to discuss
        rows, error = [], f"The published rows could not be read: {exc}"
    filters = {key: (args.get(key) or "") if (args.get(key) or "") in allowed else ""
               for key, allowed in ROW_FILTERS.items()}
    filters["dataset"] = args.get("dataset") if args.get("dataset") in names else ""
    number, _problem = number_problem(args.get("page"), text=True, bounds=(1, 99_999))
    page = number or 1  # a bad page number shows page 1
    return {
        "window": window,
        "chart": build(rows, window),
        "rows": filter_rows(rows, window, filters["where"], filters["kind"], filters["dataset"], page),
        "row_filters": filters,
        "datasets": names,
        "attachments": evidence.listing(appeal.id),
        "error": error,
    }


def _current_datasets(user_id: str) -> set[str]:
    from appeals.services.footprint import entries_for_user_id

    try:
        return {e["dataset"] for e in entries_for_user_id(user_id)}
    except Exception:  # reading the index failed: the datasets recorded at filing still count
        return set()
