"""A deliberately slow, simple reference of section 5: the published files a master should give.

It shares no code with the engine's rules: the csv module parses, every record is rebuilt from
its fields, the rules are written out plainly here. Tests compare the engine's releases with it
byte for byte.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import re
import zipfile
from pathlib import Path

IDENTITY = ("userid", "user_display_name", "user_screen_name")
PROFILE = ("user_reported_location", "user_profile_description", "user_profile_url")
REFS = ("in_reply_to_userid", "retweet_userid")


def pseudo(key: bytes, uid: str, epoch: int) -> str:
    return base64.b64encode(hmac.new(key, f"{uid}:{epoch}".encode(), hashlib.sha256).digest()).decode()


def encode(row: list[str]) -> bytes:
    return ("".join(['"' + '","'.join(v.replace('"', '""') for v in row) + '"', "\n"])).encode()


def read_rows(data: bytes) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    return rows[0], rows[1:]


def map_list(value: str, mapping: dict[str, str]) -> str:
    """`[a, b]` or `['a', 'b']` with entries found in mapping replaced, spelling kept."""
    if not value.startswith("[") or value == "[]":
        return value
    out = []
    for tok in value[1:-1].split(", "):
        q = tok[0] if tok[:1] in ("'", '"') else ""
        bare = tok[1:-1] if q else tok
        out.append(q + mapping.get(bare, bare) + q if bare in mapping else tok)
    return "[" + ", ".join(out) + "]"


def map_handles(text: str, names: dict[str, str]) -> str:
    """Every '@' + maximal run of [A-Za-z0-9_] whose lowercase is a key becomes '@' + the value."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "@":
            j = i + 1
            while j < len(text) and (text[j].isascii() and (text[j].isalnum() or text[j] == "_")):
                j += 1
            name = text[i + 1:j].lower()
            if j > i + 1 and name in names:
                out.append("@" + names[name])
                i = j
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


def derive(master: Path, name: str, key: bytes, decisions: dict, epoch_of) -> dict[str, object]:
    """{file name: bytes (CSV) or {member: data} (zip)} of both variants of `name` from its master dir.

    decisions: user id -> (remedy, epoch, screen names) applied first to the master (both variants);
    epoch_of(uid): the epoch of a hashed (follower_count < 5000), undecided account's pseudonym.
    """
    users_file = master / f"{name}_users_csv_unhashed.csv"
    _, users = read_rows(users_file.read_bytes())
    ucols, _ = read_rows(users_file.read_bytes())
    ui = {c: n for n, c in enumerate(ucols)}
    names_of = {u[ui["userid"]]: u[ui["user_screen_name"]].lower() for u in users}
    new_of, old_ids, gone, sn_new, old_ps = {}, {}, set(), {}, {}
    for uid, (remedy, epoch, sns) in decisions.items():
        new_of[uid] = pseudo(key, uid, epoch)
        olds = [pseudo(key, uid, k) for k in range(epoch)]
        for o in [uid, *olds]:
            old_ids[o] = new_of[uid]
        for p in olds:
            old_ps[p] = new_of[uid]
        for sn in set(sns) | ({names_of[uid]} if uid in names_of else set()):
            sn_new[sn.lower()] = new_of[uid]
        if remedy == "remove":
            gone.add(uid)
    hashed = {}
    hashed_names = {}
    for u in users:
        uid = u[ui["userid"]]
        if uid not in decisions and int(u[ui["follower_count"]]) < 5000:
            hashed[uid] = pseudo(key, uid, epoch_of(uid))
            hashed_names.setdefault(u[ui["user_screen_name"]].lower(), hashed[uid])

    def correct(row, cols):
        author = row[cols["userid"]]
        if author in gone:
            return None
        row = list(row)
        if author in new_of:
            for c in IDENTITY:
                row[cols[c]] = new_of[author]
            for c in PROFILE:
                row[cols[c]] = ""
        for c in REFS:
            if c in cols and row[cols[c]] in old_ids:
                row[cols[c]] = old_ids[row[cols[c]]]
        if "user_mentions" in cols:
            row[cols["user_mentions"]] = map_list(row[cols["user_mentions"]], old_ids)
        if "tweet_text" in cols:
            t = map_handles(row[cols["tweet_text"]], sn_new)
            for p, n in old_ps.items():
                t = t.replace(p, n)
            row[cols["tweet_text"]] = t
        return row

    def hash_(row, cols):
        row = list(row)
        if row[cols["userid"]] in hashed:
            p = hashed[row[cols["userid"]]]
            for c in IDENTITY:
                row[cols[c]] = p
        for c in REFS:
            if c in cols and row[cols[c]] in hashed:
                row[cols[c]] = hashed[row[cols[c]]]
        if "user_mentions" in cols:
            row[cols["user_mentions"]] = map_list(row[cols["user_mentions"]], hashed)
        if "tweet_text" in cols:
            row[cols["tweet_text"]] = map_handles(row[cols["tweet_text"]], hashed_names)
        return row

    out: dict[str, object] = {}
    for f in sorted(master.iterdir()):
        hname = f.name.replace("_unhashed", "_hashed")
        if f.suffix == ".zip":
            un, h = {}, {}
            with zipfile.ZipFile(f) as z:
                for m in z.namelist():
                    account, rest = m.split("/", 1)
                    if account in gone:
                        continue
                    account = new_of.get(account, account)
                    un[f"{account}/{rest}"] = z.read(m)
                    h[f"{hashed.get(account, account)}/{rest}"] = z.read(m)
            out[f.name], out[hname] = un, h
            continue
        header, rows = read_rows(f.read_bytes())
        cols = {c: n for n, c in enumerate(header)}
        un, h = [encode(header)], [encode(header)]
        for row in rows:
            row = correct(row, cols)
            if row is None:
                continue
            un.append(encode(row))
            h.append(encode(hash_(row, cols)))
        out[f.name], out[hname] = b"".join(un), b"".join(h)
    return out


def published(engine, name: str) -> dict[str, object]:
    """The current release of `name` in the same shape as derive()."""
    m = engine.manifest(name)
    out: dict[str, object] = {}
    for e in m["files"]:
        data = engine.file_path(name, m["version"], e["variant"], e["path"]).read_bytes()
        if e["kind"] == "media":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                out[e["path"]] = {n: z.read(n) for n in z.namelist()}
        else:
            out[e["path"]] = data
    return out


HANDLE_RE = re.compile(r"@([A-Za-z0-9_]+)")
