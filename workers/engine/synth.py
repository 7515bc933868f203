"""Generator of realistic, deterministic, UNHASHED master data in Twitter's information-operations archive format.

Each dataset ``NAME`` is written to ``out_dir/NAME/``:

* ``NAME_users_csv_unhashed.csv`` -- one row per account (10 columns);
* ``NAME_tweets_csv_unhashed.csv``, or ``NAME_tweets_csv_unhashed_1.csv``,
  ``_2.csv`` ... when a dataset has more than ``tweets_per_file`` tweets
  (31 columns; January 2019 order, except one dataset in three which uses the
  October 2018 ``ira`` order with ``in_reply_to_tweetid`` first);
* ``NAME_tweet_media_unhashed_<k>.zip`` -- tiny valid JPEG/PNG images named
  ``<userid>/images/<tweetid>-<n>.<ext>``.

Everything is quoted (``csv.QUOTE_ALL``), LF line ends, UTF-8 without BOM,
exactly as the archive. Output is byte-identical for a given seed and
arguments, and is written as a stream (memory is bounded by the number of
accounts, not of tweets), so it can produce gigabytes.

Finding a user to play with: read ``NAME_users_csv_unhashed.csv`` with
``csv.DictReader`` and take ``userid`` / ``user_screen_name`` /
``follower_count`` of any row. Accounts whose follower count is below 5,000
are hashed in the public variant. Cross-dataset mentions, replies and
retweets only go to each dataset's prominent accounts (its top 5% by
followers), so any other account is referred to only inside its own dataset:
a natural single-dataset appellant (search the other datasets' files for its
id to be sure).

Deliberate traps for matching code: screen names that extend another one
(``nadia`` / ``nadia_x``, possibly in different datasets), user ids that are
a prefix or suffix of another user id, mentions written in another case,
text with quotes, commas, newlines and several scripts, and both spellings
of an empty list (``[]`` and the empty string).
"""

from __future__ import annotations

import csv
import math
import random
import re
import struct
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "SynthDataset",
    "USERS_COLUMNS",
    "TWEETS_COLUMNS",
    "TWEETS_COLUMNS_2018",
    "dataset_names",
    "generate",
]

USERS_COLUMNS = [
    "userid", "user_display_name", "user_screen_name", "user_reported_location",
    "user_profile_description", "user_profile_url", "follower_count",
    "following_count", "account_creation_date", "account_language",
]

TWEETS_COLUMNS = [
    "tweetid", "userid", "user_display_name", "user_screen_name",
    "user_reported_location", "user_profile_description", "user_profile_url",
    "follower_count", "following_count", "account_creation_date",
    "account_language", "tweet_language", "tweet_text", "tweet_time",
    "tweet_client_name", "in_reply_to_userid", "in_reply_to_tweetid",
    "quoted_tweet_tweetid", "is_retweet", "retweet_userid", "retweet_tweetid",
    "latitude", "longitude", "quote_count", "reply_count", "like_count",
    "retweet_count", "hashtags", "urls", "user_mentions", "poll_choices",
]

# October 2018 `ira` release: reply tweet id comes before reply user id.
_IRT_U = TWEETS_COLUMNS.index("in_reply_to_userid")
_IRT_T = TWEETS_COLUMNS.index("in_reply_to_tweetid")
TWEETS_COLUMNS_2018 = list(TWEETS_COLUMNS)
TWEETS_COLUMNS_2018[_IRT_U], TWEETS_COLUMNS_2018[_IRT_T] = "in_reply_to_tweetid", "in_reply_to_userid"

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
_TWITTER_EPOCH_MS = 1288834974657
_MIN_TWEET_S = 1288915200          # 2010-11-05: snowflake ids start here
_MAX_TWEET_S = 1546300799          # 2018-12-31 23:59:59
_MIN_CREATED_S = 1230768000        # 2009-01-01
_MAX_CREATED_S = 1496275200        # 2017-06-01
_MAX_UID = 2**63 - 1               # stay inside int64 for whoever parses ids

# --------------------------------------------------------------------------
# Vocabulary. Small and hand-written: realism of shape, not of content.
# --------------------------------------------------------------------------

_WORDS = {
    "en": ("the people news today breaking must read why president election "
           "vote government truth media fake real America freedom police city "
           "world war peace support share watch video live report says new "
           "more than never again great country border money tax jobs "
           "community health school church family win lose fight stop now").split(),
    "fr": ("le la les gouvernement vérité élection peuple monde guerre paix "
           "aujourd'hui médias président ville travail liberté école famille "
           "encore jamais toujours contre pour avec sans nouvelle").split(),
    "de": ("die der das Regierung Wahrheit Wahl Volk Welt Krieg Frieden heute "
           "Medien Präsident Stadt Arbeit Freiheit Schule Familie wieder nie "
           "immer gegen für mit ohne neue Nachrichten").split(),
    "es": ("el la los gobierno verdad elección pueblo mundo guerra paz hoy "
           "medios presidente ciudad trabajo libertad escuela familia nunca "
           "siempre contra para con sin nueva noticias").split(),
    "ru": ("правда новости сегодня выборы президент народ страна мир война "
           "власть город работа свобода школа семья снова никогда всегда "
           "против для без новая Россия Украина Сирия смотрите читайте").split(),
    "uk": ("правда новини сьогодні вибори президент народ країна світ війна "
           "влада місто робота свобода школа родина знову ніколи завжди "
           "проти для без нова Україна Київ дивіться").split(),
    "ar": ("الجيش السوري يتقدم في محيط حلب الحكومة الحقيقة الانتخابات الشعب "
           "العالم الحرب السلام اليوم الإعلام الرئيس المدينة العمل الحرية "
           "المدرسة العائلة سورية دمشق عاجل شاهد").split(),
    "zh": list("中国政府新闻今天真相选举人民世界战争和平媒体总统城市工作自由学校家庭美国台湾香港发展经济"),
}
_HASHTAGS = {
    "en": ["MAGA", "BlackLivesMatter", "news", "Syria", "TrumpTrain", "USA",
           "FakeNews", "breaking", "Politics", "WakeUp", "IslamKills", "tcot"],
    "fr": ["France", "Macron", "actualité", "GiletsJaunes", "politique"],
    "de": ["Deutschland", "Merkel", "Nachrichten", "AfD", "Politik"],
    "es": ["Venezuela", "noticias", "Maduro", "Cataluña", "política"],
    "ru": ["новости", "Россия", "Сирия", "Украина", "политика", "followback"],
    "uk": ["новини", "Україна", "Київ", "Донбас"],
    "ar": ["سورية", "حلب", "عاجل", "السعودية", "سورية_النظر_من_الداخل"],
    "zh": ["香港", "中国", "新闻", "台湾"],
}
_EMOJI = ["🇺🇸", "🚨", "🔥", "😂", "👍", "❤️", "🙏", "💯", "😡", "🇷🇺", "✅", "👇"]
_CLIENTS = (["Twitter Web Client"] * 34 + ["Twitter for Android"] * 30 +
            ["Twitter for iPhone"] * 22 + ["TweetDeck"] * 4 + ["WordPress.com"] * 3 +
            ["twitterfeed"] * 3 + ["Crowdfire Inc."] * 2 + ["IFTTT"] +
            ["Linkis: turn sharing into growth"] + ["Mobile Web (M2)"] + ["Instagram"] +
            ["Facebook"] + ["Hootsuite"])
# account_language -> (tweet language code, vocabulary key); weights follow.
_ACCOUNT_LANGS = [("en", 50), ("ru", 14), ("ar", 9), ("fr", 6), ("de", 5),
                  ("es", 7), ("zh-cn", 5), ("uk", 4)]
_LANG_VOCAB = {"en": "en", "ru": "ru", "ar": "ar", "fr": "fr", "de": "de",
               "es": "es", "zh-cn": "zh", "uk": "uk"}
_LANG_KEYS = list(_LANG_VOCAB)
_FIRST = ["Nadia", "Anna", "John", "Mike", "Cathy", "Sam", "Jenna", "Olga", "Ivan",
          "Maria", "Ahmed", "Omar", "Layla", "Pierre", "Hans", "Lucia", "Carlos",
          "Wei", "Mei", "Oksana", "Dmitry", "Sarah", "Tom", "Kate", "Ali"]
_LAST = ["Smith", "Jones", "Ivanova", "Petrov", "Haddad", "Dubois", "Müller",
         "Garcia", "Li", "Chen", "Kovalenko", "Brown", "Taylor", "Nasser", "Lopez"]
_DISPLAY_SCRIPT = ["Надя Иванова", "Сергей", "Новости Москвы", "نادية حداد",
                   "أخبار سوريا", "李伟", "香港新闻", "Україна Сьогодні"]
_HANDLE_WORDS = ["news", "daily", "today", "online", "truth", "patriot", "voice",
                 "world", "report", "media", "live", "info", "politics", "usa",
                 "syria", "russia", "deplorable", "gop", "black", "real"]
_LOCATIONS = ["United States", "USA", "New York, USA", "New York, NY", "Texas",
              "Syria", "France", "Paris, France", "Berlin", "Москва", "Новосибирск",
              "Санкт-Петербург", "Київ", "الرياض", "دمشق", "北京", "Caracas",
              "USA  #IslamIsTheProblem #WakeUp", "London, UK", "Earth 🌍"]
_SITES = ["insidesyriamc.com", "news-front.info", "riafan.ru", "usa-daily.net",
          "truthfeed.com", "tass.example", "worldnews.example", "blog.example.org"]
_EXTERNAL_HANDLES = ["winknews", "StateDept", "CJTFOIR", "realNewsWire", "BBCWorldX",
                     "RT_com_x", "nytimesworld", "FoxNewsNow", "AlArabiya_x",
                     "SputnikNewsX", "ukrpravda_x", "CCTVNews_x", "ElPaisNews",
                     "LeMondeLive", "DerSpiegelX", "APbreaking", "Reuters_x"]

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass
class SynthDataset:
    """One generated dataset: its name, directory, counts and the files written."""

    name: str
    dir: Path
    users: int
    tweets: int
    files: list[Path] = field(default_factory=list)


class _User:
    """An account: its users-file row plus what the generator needs to refer to it."""

    __slots__ = ("uid", "handle", "row", "lang", "created_s", "followers",
                 "n_tweets", "ds", "last_tweet")

    def __init__(self, uid: str, handle: str, row: list[str], lang: str,
                 created_s: int, followers: int, ds: int):
        self.uid = uid
        self.handle = handle
        self.row = row
        self.lang = lang
        self.created_s = created_s
        self.followers = followers
        self.n_tweets = 0
        self.ds = ds
        self.last_tweet = ""  # id of its latest generated tweet, for replies/retweets


def dataset_names(n: int) -> list[str]:
    """Default dataset names: synth_a ... synth_z, synth_aa, synth_ab, ..."""
    if n < 1:
        raise ValueError("number of datasets must be positive")
    out = []
    for i in range(n):
        s, k = "", i
        while True:
            s = chr(ord("a") + k % 26) + s
            k = k // 26 - 1
            if k < 0:
                break
        out.append("synth_" + s)
    return out


# --------------------------------------------------------------------------
# Tiny valid images, built by hand so no imaging library is needed.
# --------------------------------------------------------------------------

def _png(r: int, g: int, b: int) -> bytes:
    """A valid 1x1 RGB PNG of one colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes([0, r, g, b]), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


_DC_CODES = ["00", "010", "011", "100", "101", "110", "1110", "11110", "111110",
             "1111110", "11111110", "111111110"]  # standard luminance DC table


def _jpeg(gray: int) -> bytes:
    """A valid baseline 8x8 grayscale JPEG of one uniform level (DC only, EOB)."""
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + b"\x01" * 64
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 8, 8, 1) + b"\x01\x11\x00"
    dc_bits = bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    dc_vals = bytes(range(12))
    ac_bits = bytes([1] + [0] * 15)   # a single 1-bit code ...
    ac_vals = b"\x00"                 # ... for EOB: every AC coefficient is zero
    dht = (b"\xff\xc4" + struct.pack(">H", 2 + 17 + 12 + 17 + 1) +
           b"\x00" + dc_bits + dc_vals + b"\x10" + ac_bits + ac_vals)
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00" + b"\x00\x3f\x00"
    # Uniform block: DC = 8 * (level - 128) with a quantiser of 1.
    dc = 8 * (gray - 128)
    size = abs(dc).bit_length()
    bits = _DC_CODES[size]
    if size:
        v = dc if dc > 0 else dc - 1 + (1 << size)
        bits += format(v, f"0{size}b")
    bits += "0"                               # EOB
    bits += "1" * (-len(bits) % 8)            # pad with ones
    data = bytearray()
    for i in range(0, len(bits), 8):
        byte = int(bits[i:i + 8], 2)
        data.append(byte)
        if byte == 0xFF:
            data.append(0x00)                 # byte stuffing
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8" + app0 + dqt + sof + dht + sos + bytes(data) + b"\xff\xd9"


# --------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------

class _Gen:
    """State shared by all datasets of one generate() call."""

    def __init__(self, seed: int, names: list[str], tweets: int,
                 users_per_dataset: int | None):
        self.seed = seed
        self.names = names
        self.rng = random.Random(f"synth:{seed}:accounts")
        self.uids: set[str] = set()
        self.handles_lc: set[str] = set()
        self.users: list[list[_User]] = []
        self.split = self._split_tweets(tweets, len(names))
        self.users_per_ds = [
            users_per_dataset if users_per_dataset else max(24, min(5000, round(t / 150)))
            for t in self.split
        ]
        # Tweet ids: snowflake-like (time << 22 | sequence), unique by construction:
        # the low 22 bits hold the allocation index, and when more than 2**22 ids
        # are needed its high part replaces the low bits of the millisecond field.
        capacity = tweets * 4 + 1024
        self.id_extra_bits = max(0, (capacity - 1).bit_length() - 22)
        self.id_seq = 0
        self.externals: list[_User] = []
        self._make_all_accounts()

    # -- planning ---------------------------------------------------------

    def _split_tweets(self, total: int, n: int) -> list[int]:
        """Split total tweets over n datasets, unevenly but each >= 1."""
        rng = random.Random(f"synth:{self.seed}:split")
        w = [rng.uniform(0.7, 1.3) for _ in range(n)]
        s = sum(w)
        base = [max(1, int(total * x / s)) for x in w]
        diff = total - sum(base)
        i = 0
        while diff != 0:
            j = i % n
            if diff > 0:
                base[j] += 1
                diff -= 1
            elif base[j] > 1:
                base[j] -= 1
                diff += 1
            i += 1
        return base

    def _new_uid(self, rng: random.Random, lo_digits: int = 9, hi_digits: int = 19) -> str:
        while True:
            d = rng.randint(lo_digits, hi_digits)
            uid = str(rng.randint(10 ** (d - 1), min(10 ** d - 1, _MAX_UID)))
            if uid not in self.uids:
                self.uids.add(uid)
                return uid

    def _decoy_uid(self, rng: random.Random, other: str) -> str | None:
        """An id that has `other` as a prefix or as a suffix (a matching trap)."""
        for _ in range(20):
            extra = str(rng.randint(1, 999999))
            cand = other + extra if rng.random() < 0.5 else extra + other
            if len(cand) <= 19 and int(cand) <= _MAX_UID and cand not in self.uids:
                self.uids.add(cand)
                return cand
        return None

    def _take_handle(self, h: str) -> bool:
        if not re.fullmatch(r"[A-Za-z0-9_]{4,15}", h) or h.lower() in self.handles_lc:
            return False
        self.handles_lc.add(h.lower())
        return True

    def _new_handle(self, rng: random.Random) -> str:
        while True:
            f, l = rng.choice(_FIRST), rng.choice(_LAST)
            l = l.replace("ü", "u")
            k = rng.random()
            if k < 0.3:  # Twitter's default: name + initials + digits
                h = (f + l[:2] + str(rng.randint(10 ** 7, 10 ** 8 - 1)))[:15]
            elif k < 0.5:
                h = f + "_" + l
            elif k < 0.7:
                h = f.lower() + str(rng.randint(1, 9999))
            else:
                h = rng.choice(_HANDLE_WORDS).capitalize() + rng.choice(_HANDLE_WORDS).capitalize()
                if rng.random() < 0.5:
                    h += str(rng.randint(1, 99))
            if self._take_handle(h[:15]):
                return h[:15]

    def _decoy_handle(self, rng: random.Random, other: str) -> str | None:
        """A handle that extends `other` (nadia -> nadia_x / nadia7): a matching trap."""
        for _ in range(20):
            suffix = rng.choice(["_", "_x", "x", "1", "_news", "_2", "7", "_ru", "__"])
            if suffix == "_":
                suffix += str(rng.randint(0, 99))
            h = other + suffix
            if len(h) <= 15 and self._take_handle(h):
                return h
        return None

    def _profile(self, rng: random.Random, uid: str, handle: str, lang: str,
                 followers: int) -> tuple[list[str], int]:
        k = rng.random()
        if k < 0.55:
            display = rng.choice(_FIRST) + " " + rng.choice(_LAST)
        elif k < 0.75:
            display = rng.choice(_DISPLAY_SCRIPT)
        elif k < 0.85:
            display = handle
        elif k < 0.92:
            display = rng.choice(_LAST) + ", " + rng.choice(_FIRST)   # comma inside
        else:
            display = '"' + rng.choice(_FIRST) + '" ' + rng.choice(_LAST) + " " + rng.choice(_EMOJI)
        location = rng.choice(_LOCATIONS) if rng.random() < 0.7 else ""
        if rng.random() < 0.75:
            words = rng.choices(_WORDS[_LANG_VOCAB[lang]], k=rng.randint(3, 14))
            sep = "" if lang == "zh-cn" else " "
            desc = sep.join(words)
            if rng.random() < 0.5:
                desc += " #" + rng.choice(_HASHTAGS[_LANG_VOCAB[lang]])
            if rng.random() < 0.12:
                desc = desc + "\n" + "#" + rng.choice(_HASHTAGS["en"]) + " " + rng.choice(_EMOJI)
            if rng.random() < 0.1:
                desc += ' "' + rng.choice(_WORDS["en"]) + '", ' + rng.choice(_WORDS["en"])
        else:
            desc = ""
        url = "https://t.co/" + "".join(rng.choices(_B64, k=10)) if rng.random() < 0.4 else ""
        created_s = rng.randint(_MIN_CREATED_S, _MAX_CREATED_S)
        following = int(rng.lognormvariate(math.log(300), 1.2))
        row = [uid, display, handle, location, desc, url, str(followers), str(following),
               time.strftime("%Y-%m-%d", time.gmtime(created_s)), lang]
        return row, created_s

    def _make_all_accounts(self) -> None:
        rng = self.rng
        langs = [l for l, _ in _ACCOUNT_LANGS]
        lw = [w for _, w in _ACCOUNT_LANGS]
        all_so_far: list[_User] = []
        for ds, n_users in enumerate(self.users_per_ds):
            users: list[_User] = []
            for i in range(n_users):
                uid = handle = None
                # ~6% of accounts are decoys of an earlier one (any dataset).
                if all_so_far and rng.random() < 0.06:
                    uid = self._decoy_uid(rng, rng.choice(all_so_far).uid)
                if all_so_far and rng.random() < 0.06:
                    handle = self._decoy_handle(rng, rng.choice(all_so_far).handle)
                uid = uid or self._new_uid(rng)
                handle = handle or self._new_handle(rng)
                lang = rng.choices(langs, lw)[0]
                followers = int(rng.lognormvariate(math.log(350), 1.5))
                row, created_s = self._profile(rng, uid, handle, lang, followers)
                u = _User(uid, handle, row, lang, created_s, followers, ds)
                users.append(u)
                all_so_far.append(u)
            # Guarantee both sides of the 5,000-follower line in every dataset.
            if all(u.followers < 5000 for u in users):
                self._set_followers(users[0], rng.randint(5000, 60000))
            if all(u.followers >= 5000 for u in users):
                self._set_followers(users[-1], rng.randint(10, 4999))
            self.users.append(users)
        # Guarantee at least one decoy of each kind per call, even in tiny outputs.
        flat = [u for us in self.users for u in us]
        if not _has_prefix_pair([u.handle.lower() for u in flat]):
            short = self._short_handle(rng)
            self._rename(flat[0], short)
            ext = self._decoy_handle(rng, short)
            if ext:
                self._rename(flat[-1], ext)
        ids = [u.uid for u in flat]
        if not (_has_prefix_pair(ids) or _has_prefix_pair([i[::-1] for i in ids])):
            base = flat[0]
            if len(base.uid) > 15:  # leave room for the extra digits
                self.uids.discard(base.uid)
                base.uid = base.row[0] = self._new_uid(rng, 9, 12)
            cand = self._decoy_uid(rng, base.uid)
            if cand:
                self.uids.discard(flat[-1].uid)
                flat[-1].uid = flat[-1].row[0] = cand
        # Accounts outside every dataset (news outlets etc.), referred to by tweets.
        # Most mentions, replies and retweets in the archive point at accounts
        # outside the campaign (media, politicians); popularity is Zipf-like.
        ext_handles = list(_EXTERNAL_HANDLES)
        while len(ext_handles) < 400:
            h = rng.choice(_HANDLE_WORDS).capitalize() + rng.choice(
                ["News", "Post", "Times", "TV", "Daily", "Gov", "_org", "Online", "Now", "Hub"])
            if rng.random() < 0.4:
                h += str(rng.randint(1, 999))
            ext_handles.append(h)
        for h in ext_handles:
            if self._take_handle(h):
                uid = self._new_uid(rng, 7, 10)
                self.externals.append(_User(uid, h, [], "en", _MIN_CREATED_S, 100000, -1))
        self.ext_cum = []
        acc = 0.0
        for i in range(len(self.externals)):
            acc += 1.0 / (i + 1)
            self.ext_cum.append(acc)
        # Tweets per account: Pareto weights -> a few accounts write most tweets.
        for ds, users in enumerate(self.users):
            total = self.split[ds]
            drng = random.Random(f"synth:{self.seed}:alloc:{ds}")
            w = [drng.paretovariate(0.9) for _ in users]
            s = sum(w)
            counts = [int(total * x / s) for x in w]
            rest = total - sum(counts)
            order = sorted(range(len(users)), key=lambda i: (-(total * w[i] / s - counts[i]), i))
            for i in order[:rest]:
                counts[i] += 1
            for u, c in zip(users, counts):
                u.n_tweets = c

    def _short_handle(self, rng: random.Random) -> str:
        while True:
            h = rng.choice(_FIRST).lower() + str(rng.randint(0, 99))
            if self._take_handle(h):
                return h

    def _rename(self, u: _User, handle: str) -> None:
        self.handles_lc.discard(u.handle.lower())
        self.handles_lc.add(handle.lower())
        if u.row[1] == u.handle:
            u.row[1] = handle
        u.handle = handle
        u.row[2] = handle

    @staticmethod
    def _set_followers(u: _User, n: int) -> None:
        u.followers = n
        u.row[6] = str(n)

    # -- ids --------------------------------------------------------------

    def tweet_id(self, rng: random.Random, t_s: int) -> str:
        """A unique snowflake-like id whose timestamp is t_s (plus random ms)."""
        idx = self.id_seq
        self.id_seq += 1
        ms = (t_s * 1000 + rng.randint(0, 59999)) - _TWITTER_EPOCH_MS
        if self.id_extra_bits:
            mask = (1 << self.id_extra_bits) - 1
            ms = (ms & ~mask) | ((idx >> 22) & mask)
        return str((ms << 22) | (idx & 0x3FFFFF))


def _has_prefix_pair(values: list[str]) -> bool:
    """True if some value is a proper prefix of another (checked on sorted neighbours)."""
    v = sorted(values)
    return any(b.startswith(a) and a != b for a, b in zip(v, v[1:]))


def _fmt_list_str(items: list[str]) -> str:
    return "[" + ", ".join("'" + x + "'" for x in items) + "]"


def _empty_list(rng: random.Random) -> str:
    # The archive spells an empty list "[]" mostly, sometimes "".
    return "" if rng.random() < 0.1 else "[]"


class _DatasetWriter:
    """Streams one dataset's tweets (and media) to disk."""

    def __init__(self, g: _Gen, ds: int, out: Path, tweets_per_file: int | None,
                 media: bool, bar):
        self.g = g
        self.ds = ds
        self.name = g.names[ds]
        self.out = out
        self.users = g.users[ds]
        self.rng = random.Random(f"synth:{g.seed}:tweets:{ds}")
        self.tweets_per_file = tweets_per_file
        self.media = media
        self.bar = bar
        self.files: list[Path] = []
        self.ira_order = ds % 3 == 1
        rng = self.rng
        # Who gets referred to: in-dataset accounts weighted by followers; other
        # datasets only through their prominent accounts (top followers).
        self.ref_pool = self.users
        # In-dataset references concentrate on the campaign's visible accounts:
        # a typical low-follower account is referred to by a handful of rows.
        self.ref_cum = self._cum([u.followers ** 1.5 + 1 for u in self.users])
        others = []
        for j, us in enumerate(g.users):
            if j == ds:
                continue
            top = sorted(us, key=lambda u: (-u.followers, u.uid))[:max(1, len(us) // 20)]
            others.extend(top)
        self.cross_pool = others
        self.cross_cum = self._cum([u.followers ** 0.5 + 1 for u in others]) if others else []
        self.img_cache = [_jpeg(v) for v in range(0, 256, 17)] + [
            _png(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(8)]

    @staticmethod
    def _cum(weights: list[float]) -> list[float]:
        out, s = [], 0.0
        for w in weights:
            s += w
            out.append(s)
        return out

    def _target(self) -> _User:
        r = self.rng.random()
        if r < 0.35 or (r < 0.5 and not self.cross_pool):
            return self.rng.choices(self.ref_pool, cum_weights=self.ref_cum)[0]
        if r < 0.5:
            return self.rng.choices(self.cross_pool, cum_weights=self.cross_cum)[0]
        return self.rng.choices(self.g.externals, cum_weights=self.g.ext_cum)[0]

    def _ref_tweet(self, u: _User, t_s: int) -> str:
        # A real tweet of the target when one exists in this dataset, else an id
        # of a tweet outside the data (unique all the same).
        return u.last_tweet or self.g.tweet_id(self.rng, t_s - self.rng.randint(60, 10 ** 6))

    def _mention(self, u: _User) -> str:
        h = u.handle
        r = self.rng.random()
        if r < 0.04:
            h = h.lower()           # matching must be case-insensitive
        elif r < 0.06:
            h = h.upper()
        return "@" + h

    def _body(self, vocab: str) -> tuple[str, list[str], list[str]]:
        rng = self.rng
        words = list(rng.choices(_WORDS[vocab], k=rng.randint(3, 22)))
        for i in range(len(words)):
            if rng.random() < 0.07:
                words[i] += "," if vocab != "zh" else "，"
        if rng.random() < 0.1 and len(words) > 3:
            a = rng.randrange(len(words) - 2)
            words[a] = '"' + words[a]
            words[a + 2] += '"'
        tags: list[str] = []
        if rng.random() < 0.4:
            tags = rng.sample(_HASHTAGS[vocab], k=min(len(_HASHTAGS[vocab]), rng.randint(1, 3)))
        urls: list[str] = []
        if rng.random() < 0.4:
            for _ in range(rng.randint(1, 2)):
                urls.append(f"http://{rng.choice(_SITES)}/{rng.randint(2014, 2018)}/"
                            f"{rng.randint(1, 12):02d}/{rng.choice(_WORDS['en'])}-{rng.randint(1, 99999)}")
        sep = "" if vocab == "zh" else " "
        if rng.random() < 0.18:
            # Multi-line text, as ~18% of the archive's tweets.
            cut = rng.randint(1, len(words))
            text = sep.join(words[:cut]) + rng.choice(["\n", "\n\n", ":\n"]) + sep.join(words[cut:])
        else:
            text = sep.join(words)
        if tags:
            text += " " + " ".join("#" + t for t in tags)
        for _ in urls:
            text += " https://t.co/" + "".join(rng.choices(_B64, k=10))
        if rng.random() < 0.15:
            text += " " + "".join(rng.choices(_EMOJI, k=rng.randint(1, 3)))
        return text, tags, urls

    def _open_part(self, k: int | None):
        suffix = f"_{k}" if k is not None else ""
        p = self.out / f"{self.name}_tweets_csv_unhashed{suffix}.csv"
        f = open(p, "w", encoding="utf-8", newline="", buffering=1 << 20)
        w = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n")
        w.writerow(TWEETS_COLUMNS_2018 if self.ira_order else TWEETS_COLUMNS)
        self.files.append(p)
        return f, w

    def write(self) -> int:
        rng = self.rng
        total = sum(u.n_tweets for u in self.users)
        per = self.tweets_per_file
        split = per is not None and total > per
        part = 1
        f, w = self._open_part(1 if split else None)
        in_part = 0
        zf = None
        zip_k = 0
        in_zip = 0
        media_per_zip = 2000
        ira = self.ira_order
        written = 0
        pending = 0
        for u in self.users:
            start = max(u.created_s, _MIN_TWEET_S)
            prof = u.row
            for _ in range(u.n_tweets):
                if split and in_part >= per:
                    f.close()
                    part += 1
                    f, w = self._open_part(part)
                    in_part = 0
                t_s = rng.randint(start, _MAX_TWEET_S)
                tid = self.g.tweet_id(rng, t_s)
                t_s = ((int(tid) >> 22) + _TWITTER_EPOCH_MS) // 1000
                lang = u.lang if rng.random() < 0.8 else rng.choice(_LANG_KEYS)
                vocab = _LANG_VOCAB[lang]
                tweet_lang = "zh" if lang == "zh-cn" else lang
                mentions: list[_User] = []
                irt_u = irt_t = rt_u = rt_t = quoted = ""
                is_rt = "false"
                k = rng.random()
                if k < 0.02:
                    text, tags, urls = "".join(rng.choices(_EMOJI, k=rng.randint(1, 4))), [], []
                    tweet_lang = "und"
                else:
                    text, tags, urls = self._body(vocab)
                    if rng.random() < 0.2:
                        # Extra mentions inside the text.
                        for _m in range(rng.randint(1, 3)):
                            t = self._target()
                            if t is u or t in mentions:
                                continue
                            mentions.append(t)
                            pos = rng.random()
                            m = self._mention(t)
                            if pos < 0.3:
                                text = m + " " + text
                            elif pos < 0.7 or " " not in text:
                                text = text + " " + m
                            else:
                                text = text.replace(" ", " " + m + " ", 1)
                    if k < 0.22:
                        t = self._target()
                        if t is not u:
                            is_rt = "true"
                            rt_u, rt_t = t.uid, self._ref_tweet(t, t_s)
                            text = f"RT @{t.handle}: {text}"
                            if t in mentions:
                                mentions.remove(t)
                            mentions.insert(0, t)
                    elif k < 0.32:
                        t = self._target()
                        if t is not u:
                            irt_u, irt_t = t.uid, self._ref_tweet(t, t_s)
                            text = self._mention(t) + " " + text
                            if t in mentions:
                                mentions.remove(t)
                            mentions.insert(0, t)
                    if rng.random() < 0.08:
                        quoted = self._ref_tweet(self._target(), t_s)
                if is_rt == "true":
                    qc = rc = lc = rtc = "0"
                else:
                    qc = str(int(rng.paretovariate(2.5)) - 1)
                    rc = str(int(rng.paretovariate(2.0)) - 1)
                    lc = str(int(rng.paretovariate(1.3)) - 1)
                    rtc = str(int(rng.paretovariate(1.5)) - 1)
                row = [tid, *prof, tweet_lang, text,
                       time.strftime("%Y-%m-%d %H:%M", time.gmtime(t_s)),
                       rng.choice(_CLIENTS),
                       irt_t if ira else irt_u, irt_u if ira else irt_t,
                       quoted, is_rt, rt_u, rt_t, "absent", "absent", qc, rc, lc, rtc,
                       _fmt_list_str(tags) if tags else _empty_list(rng),
                       _fmt_list_str(urls) if urls else _empty_list(rng),
                       ("[" + ", ".join(m.uid for m in mentions) + "]") if mentions else _empty_list(rng),
                       ""]
                w.writerow(row)
                u.last_tweet = tid
                in_part += 1
                written += 1
                if self.media and is_rt == "false" and rng.random() < 0.03:
                    if zf is None or in_zip >= media_per_zip:
                        if zf is not None:
                            zf.close()
                        zip_k += 1
                        zp = self.out / f"{self.name}_tweet_media_unhashed_{zip_k}.zip"
                        zf = zipfile.ZipFile(zp, "w", zipfile.ZIP_STORED)
                        self.files.append(zp)
                        in_zip = 0
                    for n in range(1, (2 if rng.random() < 0.8 else rng.randint(2, 4)) + 1):
                        img = rng.choice(self.img_cache)
                        ext = "png" if img[:4] == b"\x89PNG" else "jpg"
                        tm = time.gmtime(t_s)
                        zi = zipfile.ZipInfo(f"{u.uid}/images/{tid}-{n}.{ext}",
                                             date_time=tuple(tm[:6]))
                        zi.compress_type = zipfile.ZIP_STORED
                        zi.external_attr = 0o644 << 16
                        zf.writestr(zi, img)
                        in_zip += 1
                pending += 1
                if pending >= 2048 and self.bar is not None:
                    self.bar.update(pending)
                    pending = 0
        f.close()
        if zf is not None:
            zf.close()
        if self.bar is not None and pending:
            self.bar.update(pending)
        return written


def _write_users(path: Path, users: list[_User]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n")
        w.writerow(USERS_COLUMNS)
        for u in users:
            w.writerow(u.row)


def generate(out_dir: Path, datasets: int | list[str], tweets: int, seed: int,
             progress: bool = False, users_per_dataset: int | None = None,
             tweets_per_file: int | None = None, media: bool = True) -> list[SynthDataset]:
    """Write `datasets` synthetic unhashed datasets holding `tweets` tweets in total under out_dir/NAME/."""
    names = dataset_names(datasets) if isinstance(datasets, int) else list(datasets)
    if not names:
        raise ValueError("at least one dataset is needed")
    for n in names:
        if not isinstance(n, str) or not _NAME_RE.match(n):
            raise ValueError(f"invalid dataset name {n!r}: use lowercase letters, digits and _")
    if len(set(names)) != len(names):
        raise ValueError("dataset names must be unique")
    if tweets < len(names):
        raise ValueError(f"need at least one tweet per dataset ({len(names)})")
    if users_per_dataset is not None and users_per_dataset < 2:
        raise ValueError("users_per_dataset must be at least 2")
    if tweets_per_file is not None and tweets_per_file < 1:
        raise ValueError("tweets_per_file must be positive")
    out_dir = Path(out_dir)
    g = _Gen(seed, names, tweets, users_per_dataset)
    bar = None
    if progress:
        from tqdm import tqdm  # only needed for interactive use
        bar = tqdm(total=tweets, unit="tweet", unit_scale=True, desc="synth")
    result = []
    try:
        for ds, name in enumerate(names):
            d = out_dir / name
            d.mkdir(parents=True, exist_ok=True)
            up = d / f"{name}_users_csv_unhashed.csv"
            _write_users(up, g.users[ds])
            wr = _DatasetWriter(g, ds, d, tweets_per_file, media, bar)
            n = wr.write()
            # Users file first, then tweet parts in order, then media zips.
            files = [up] + [p for p in wr.files if p.suffix == ".csv"] + [p for p in wr.files if p.suffix == ".zip"]
            result.append(SynthDataset(name, d, len(g.users[ds]), n, files))
    finally:
        if bar is not None:
            bar.close()
    return result
