"""What a finished correction did for an owner, in the past tense, and what remains: read from the appeal alone."""

from __future__ import annotations


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def correction_summary(appeal: dict) -> dict | None:
    """For an owner's corrected appeal (appeal_to_owner_dict), plain statements of what was done where,
    the releases that carry it, and what remains in the data; None for any other status."""
    if appeal.get("status") != "corrected" or not appeal.get("decision"):
        return None
    remedy = appeal["decision"].get("remedy")
    releases = appeal.get("releases") or {}
    datasets = appeal.get("datasets") or []
    done = []
    for d in datasets:
        authored = d["authored_tweets"]
        if remedy not in ("remove", "rehash"):
            what = "your account was corrected"
        elif remedy == "remove":
            what = (f"{_n(authored, 'tweet')} by your account and your profile were removed"
                    if authored else "your profile was removed")
        else:
            what = (f"your {_n(authored, 'tweet')} now carry a new pseudonym that cannot be linked to the old one, "
                    "and your profile's location, description and link were cleared")
        done.append({"dataset": d["dataset"], "what": what, "version": releases.get(d["dataset"])})
    referring = sum(d["referring_rows"] for d in datasets)
    authored_total = sum(d["authored_tweets"] for d in datasets)
    remains = []
    if referring:
        remains.append(
            f"{_n(referring, 'tweet')} by other accounts still {'mentions' if referring == 1 else 'mention'} "
            "your account, with your id replaced by a pseudonym that cannot be linked to you."
        )
    if remedy == "rehash" and authored_total:
        remains.append(
            f"Your own {_n(authored_total, 'tweet')} {'stays' if authored_total == 1 else 'stay'} in the datasets, "
            "shown only under the new pseudonym, in the public and in the licensed copy."
        )
    if not remains:
        remains.append("Nothing of your account remains in these datasets.")
    verb = {"remove": "removed from", "rehash": "re-hashed in"}.get(remedy, "corrected in")
    headline = (
        f"Your account was {verb} "
        f"{_n(len(datasets), 'dataset')}, and corrected releases were published."
    )
    return {
        "remedy": remedy,
        "headline": headline,
        "done": done,
        "remains": remains,
        "earlier_copies": "People who downloaded an earlier version were told to replace it with the corrected one.",
    }
