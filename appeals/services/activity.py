"""The account's own activity over time, drawn against the compromise window the owner claims.

`collect` reads the account's rows from every published dataset; `build` turns rows into plain chart
geometry (weekly bars, the shaded window, splits by posting client, by language and by hour of day) that
a template draws as SVG on the server. No chart runtime runs in the browser. `Summary` keeps both per
account and set of releases; `warm` makes it in a worker before the first view (at filing and after every
publication), `forget` drops an account's after a correction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from appeals import runtime
from appeals.requests import number_problem

log = logging.getLogger("appeals.activity")

WIDTH = 720  # SVG user units; the picture scales to its container
LEFT = 44
RIGHT = 8
TOP = 8
MAIN_HEIGHT = 150
SMALL_HEIGHT = 36
AXIS = 22
TOP_SERIES = 4  # clients or languages drawn one by one; the rest are "other"
ROWS_LIMIT = 200_000  # rows read per dataset for the workspace
CACHE_FILES = 256  # activity summaries kept on disk; the least recently written go first
SAMPLE_ROWS = 5  # sample rows per kind and variant in the evidence table (services/review.py)
# Appeals warmed per publication, the queue's oldest first: an account takes a summary and a sample file
# per dataset, and warming more than the cache keeps would trim the very summaries just made.
WARM_LIMIT = CACHE_FILES // 8


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
        found = engine.samples(user_id, name, limit=ROWS_LIMIT, variants=("unhashed",)).get("unhashed") or {}
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
        # At least 1 px wide to stay visible, and kept inside the plot when that widens a window at its right edge.
        width = max(x_of(end) - x_of(start), 1)
        shade = {"x": round(min(x_of(start), LEFT + plot - width), 2), "width": round(width, 2),
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


class Summary:
    """The account's rows in a set of releases, read once and kept in a small SQLite file.

    Releases never change, so a file named after the account and the releases' ids stays right for as
    long as those releases are the current ones: the page then reads one page of rows and, for each
    claimed window, the chart built once. A new release (a correction, a re-import) means a new name.
    """

    def __init__(self, path: Path):
        self.path = path
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)

    @classmethod
    def open(cls, user_id: str, datasets: list[str]) -> "Summary":
        """The summary of `user_id` over the current releases of `datasets`, made from the engine on first use."""
        path = summary_path(user_id, datasets)
        if not path.exists():
            _write_summary(path, collect(user_id, datasets))
        return cls(path)

    def chart(self, window: Window) -> dict:
        """The chart for `window` (built at the first request for that window, then read back)."""
        key = f"{window.start}|{window.end}"
        found = self.conn.execute("SELECT chart FROM charts WHERE win = ?", (key,)).fetchone()
        if found:
            return json.loads(found[0])
        rows = [{"tweet_time": t, "tweet_client_name": c, "tweet_language": lang}
                for t, c, lang in self.conn.execute(
                    "SELECT tweet_time, client, language FROM rows WHERE kind = 'authored' ORDER BY seq")]
        chart = build(rows, window)
        try:  # a read-only handle: the one write goes through its own connection
            conn = sqlite3.connect(self.path, timeout=5)
            with conn:
                conn.execute("INSERT OR REPLACE INTO charts VALUES (?, ?)", (key, json.dumps(chart)))
            conn.close()
        except sqlite3.Error:  # another process is writing the same chart: it is built again next time
            pass
        return chart

    def drawn(self, window: Window, key: str, draw) -> str:
        """The chart for `window` as `draw(chart, window)` made it (text), kept under `key` (which names
        the drawing's version): a large account's chart is thousands of SVG elements, drawn once."""
        name = f"{window.start}|{window.end}|{key}"
        try:
            found = self.conn.execute("SELECT html FROM drawings WHERE name = ?", (name,)).fetchone()
        except sqlite3.Error:  # a summary written before drawings were kept
            found = None
        if found:
            return found[0]
        html = str(draw(self.chart(window), window))
        try:
            conn = sqlite3.connect(self.path, timeout=5)
            with conn:
                conn.execute("CREATE TABLE IF NOT EXISTS drawings (name TEXT PRIMARY KEY, html TEXT)")
                conn.execute("INSERT OR REPLACE INTO drawings VALUES (?, ?)", (name, html))
            conn.close()
        except sqlite3.Error:  # another process is writing: drawn again next time
            pass
        return html

    def page(self, window: Window, where: str = "", kind: str = "", dataset: str = "", page: int = 1,
             per_page: int = 50) -> dict:
        """Like filter_rows, read from the summary: one page of rows and the number matching."""
        if window.start is None and window.end is None:
            inside, params = "0", []
        else:
            inside, params = "day IS NOT NULL", []
            if window.start is not None:
                inside, params = inside + " AND day >= ?", params + [window.start.isoformat()]
            if window.end is not None:
                inside, params = inside + " AND day <= ?", params + [window.end.isoformat()]
        conditions, values = ["1"], []
        if where:
            conditions.append(f"({inside})" if where == "inside" else f"NOT ({inside})")
            values += params
        if kind:
            conditions.append("kind = ?")
            values.append(kind)
        if dataset:
            conditions.append("dataset = ?")
            values.append(dataset)
        clause = " AND ".join(conditions)
        total = self.conn.execute(f"SELECT count(*) FROM rows WHERE {clause}", values).fetchone()[0]
        pages = max(1, -(-total // per_page))
        page = min(max(1, page), pages)
        found = self.conn.execute(
            f"SELECT d.data, r.dataset, r.kind, {inside} FROM rows r JOIN row_data d ON d.seq = r.seq "
            f"WHERE r.seq IN (SELECT seq FROM rows WHERE {clause} ORDER BY seq LIMIT ? OFFSET ?) ORDER BY r.seq",
            params + values + [per_page, (page - 1) * per_page]).fetchall()
        rows = [{**json.loads(data), "_dataset": name, "_kind": row_kind, "_inside": bool(is_inside)}
                for data, name, row_kind, is_inside in found]
        return {"rows": rows, "total": total, "page": page, "pages": pages, "per_page": per_page}


def summary_key(user_id: str, datasets: list[str]) -> str:
    """The name of the account's summary over the current releases of `datasets`: the account and the
    releases' ids, so it changes with every new release (the warm job's id is made from it too)."""
    engine = runtime.engine()
    releases = [(name, engine.release_id(name)) for name in datasets]
    return _account_key(user_id) + "-" + hashlib.sha256(json.dumps(releases).encode()).hexdigest()[:32]


def summary_path(user_id: str, datasets: list[str]) -> Path:
    """Where the summary named by `summary_key` is kept."""
    return _summary_file(summary_key(user_id, datasets))


def _summary_file(key: str) -> Path:
    return runtime.settings().activity_cache_dir / (key + ".sqlite3")


def _account_key(user_id: str) -> str:
    return hashlib.sha256(b"activity:" + user_id.encode()).hexdigest()[:16]


def _write_summary(path: Path, rows: list[dict]) -> None:
    """Write the rows (already in page order) to a new summary file, atomically; drop the oldest files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    os.close(fd)
    try:
        with sqlite3.connect(temp) as conn:
            # Narrow rows for counting and filtering; the published fields apart, read for one page only.
            conn.execute("CREATE TABLE rows (seq INTEGER PRIMARY KEY, dataset TEXT, kind TEXT, day TEXT, "
                         "tweet_time TEXT, client TEXT, language TEXT)")
            conn.execute("CREATE TABLE row_data (seq INTEGER PRIMARY KEY, data TEXT)")
            conn.execute("CREATE TABLE charts (win TEXT PRIMARY KEY, chart TEXT)")
            conn.execute("CREATE TABLE drawings (name TEXT PRIMARY KEY, html TEXT)")
            narrow, wide = [], []
            for seq, row in enumerate(rows):
                day = tweet_day(row)
                narrow.append((seq, row["_dataset"], row["_kind"], day.isoformat() if day else None,
                               row.get("tweet_time"), row.get("tweet_client_name"), row.get("tweet_language")))
                wide.append((seq, json.dumps({k: v for k, v in row.items() if not k.startswith("_")},
                                             ensure_ascii=False, separators=(",", ":"))))
            conn.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?)", narrow)
            conn.executemany("INSERT INTO row_data VALUES (?, ?)", wide)
        conn.close()
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    _trim(path.parent)


def _trim(folder: Path) -> None:
    """Keep the CACHE_FILES most recently written summaries and samples."""
    kept = []
    for found in folder.iterdir():
        if found.suffix == ".part":  # being written
            continue
        try:
            kept.append((found.stat().st_mtime, found))
        except OSError:  # removed meanwhile by another process
            pass
    for _, old in sorted(kept, reverse=True)[CACHE_FILES:]:
        old.unlink(missing_ok=True)


def samples(user_id: str, dataset: str, limit: int = 5) -> dict:
    """The engine's sample rows of `user_id` in the current release of `dataset` (both variants), kept on
    disk beside the activity summaries: reading them scans every file holding the account."""
    engine = runtime.engine()
    folder = runtime.settings().activity_cache_dir
    path = folder / f"{_account_key(user_id)}-samples-{limit}-{engine.release_id(dataset)[:32]}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    found = engine.samples(user_id, dataset, limit=limit)
    folder.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=folder, suffix=".part")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(found, out, ensure_ascii=False)
    os.replace(temp, path)
    _trim(folder)
    return found


def forget(user_id: str) -> None:
    """Delete every kept summary of `user_id` (after a correction, its earlier rows must not linger)."""
    folder = runtime.settings().activity_cache_dir
    for old in folder.glob(_account_key(user_id) + "-*"):
        old.unlink(missing_ok=True)


def workspace(principal, appeal_id, args, draw=None, draw_key: str = "") -> dict:
    """The reviewer's evidence workspace for one appeal: the chart, one filtered page of rows, the files.

    `args` holds the row filters (where, kind, dataset, page) as strings; unknown values fall back to all.
    With `draw` (chart, window -> text), "chart_html" is the drawn chart, kept with the summary under
    `draw_key` (the caller's name for the drawing's version, e.g. a hash of its template).
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
    names = _appeal_datasets(appeal)
    error = None
    filters = {key: (args.get(key) or "") if (args.get(key) or "") in allowed else ""
               for key, allowed in ROW_FILTERS.items()}
    filters["dataset"] = args.get("dataset") if args.get("dataset") in names else ""
    number, _problem = number_problem(args.get("page"), text=True, bounds=(1, 99_999))
    page = number or 1  # a bad page number shows page 1
    try:
        summary = Summary.open(appeal.account.user_id, names)
        try:
            # With a drawing kept, the chart's figures are not read at all: the page shows the drawing.
            drawn = summary.drawn(window, draw_key, draw) if draw else None
            chart = summary.chart(window) if draw is None else None
            rows = summary.page(window, filters["where"], filters["kind"], filters["dataset"], page)
        finally:
            summary.conn.close()
    except Exception as exc:  # the engine may be unreadable; the decision must still be possible to discuss
        error = f"The published rows could not be read: {exc}"
        chart, rows = build([], window), filter_rows([], window)
        drawn = str(draw(chart, window)) if draw else None
    return {
        "window": window,
        "chart": chart,
        "chart_html": drawn,
        "rows": rows,
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


def _appeal_datasets(appeal, current: set[str] | None = None) -> list[str]:
    """The datasets an appeal's workspace covers: those recorded at filing and those holding the account now
    (`current`, when the caller has read them already)."""
    current = _current_datasets(appeal.account.user_id) if current is None else current
    return sorted({d.dataset for d in appeal.datasets} | current)


# --- warming: made by a worker before the first reviewer asks (issue 15) ------------------------------


def warm_keys(appeal_ids) -> dict[int, str]:
    """appeal id -> `summary_key` of its account's summary over the current releases, for each appeal whose
    summary is not kept yet (a kept one needs no job). Appeals whose releases cannot be read are left out:
    the reviewer's view says so itself."""
    from sqlalchemy import select

    from appeals import db
    from appeals.models import Appeal

    ids = sorted({int(i) for i in appeal_ids})
    if not ids:
        return {}
    keys = {}
    for appeal in db.session.scalars(select(Appeal).where(Appeal.id.in_(ids))):
        try:
            key = summary_key(appeal.account.user_id, _appeal_datasets(appeal))
        except Exception:  # noqa: BLE001 - an unreadable release: nothing to warm, the view reports it
            log.warning("no activity summary key for appeal %s", appeal.id, exc_info=True)
            continue
        if not _summary_file(key).exists():
            keys[appeal.id] = key
    return keys


def warm(appeal_id: int) -> dict:
    """Make and keep what the reviewer's first view of the appeal reads: the account's summary over the
    current releases, the chart's figures for the claimed window and the sample rows of each dataset.
    Cheap when they are kept already (a few file and index lookups)."""
    from appeals import db
    from appeals.models import Appeal
    from appeals.services.footprint import entries_for_user_id

    appeal = db.session.get(Appeal, int(appeal_id))
    if appeal is None:
        return {"appeal": appeal_id, "built": False, "missing": True}
    user_id = appeal.account.user_id
    window = Window(appeal.compromised_from, appeal.compromised_until)
    entries = entries_for_user_id(user_id)
    names = _appeal_datasets(appeal, {e["dataset"] for e in entries})
    db.session.rollback()  # the engine's work ahead is long: hold no transaction open meanwhile
    built = not summary_path(user_id, names).exists()
    summary = Summary.open(user_id, names)
    try:
        summary.chart(window)
    finally:
        summary.conn.close()
    for entry in entries:
        samples(user_id, entry["dataset"], limit=SAMPLE_ROWS)
    return {"appeal": int(appeal_id), "built": built, "datasets": names}


def holding(datasets, limit: int = WARM_LIMIT) -> list[int]:
    """Up to `limit` open appeals whose accounts the current releases of `datasets` hold (after those were
    published), oldest first as the queue orders them; one index lookup per open appeal looked at."""
    from sqlalchemy import select

    from appeals import db
    from appeals.models import OPEN_STATUSES, Account, Appeal

    wanted = set(datasets)
    found = db.session.execute(select(Appeal.id, Account.user_id).join(Account, Account.id == Appeal.account_id)
                               .where(Appeal.status.in_(OPEN_STATUSES))
                               .order_by(Appeal.created_at, Appeal.id)).all()
    db.session.rollback()
    chosen = []
    for appeal_id, user_id in found:
        if len(chosen) >= limit:
            break
        if wanted & _current_datasets(user_id):
            chosen.append(appeal_id)
    return chosen
