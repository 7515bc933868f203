"""What a finished correction did for an owner, in the past tense, and what remains: read from the appeal alone."""

from __future__ import annotations

from appeals.i18n import gettext as _
from appeals.i18n import ngettext


def correction_summary(appeal: dict) -> dict | None:
    """For an owner's corrected appeal (appeal_to_owner_dict), plain statements of what was done where,
    the releases that carry it, and what remains in the data; None for any other status.

    Every sentence is whole in the catalogue (issue 16), so each language can build it its own way.
    """
    if appeal.get("status") != "corrected" or not appeal.get("decision"):
        return None
    remedy = appeal["decision"].get("remedy")
    releases = appeal.get("releases") or {}
    datasets = appeal.get("datasets") or []
    done = []
    for d in datasets:
        authored = d["authored_tweets"]
        if remedy not in ("remove", "rehash"):
            what = _("your account was corrected")
        elif remedy == "remove":
            what = (ngettext("%(num)s tweet by your account and your profile were removed",
                             "%(num)s tweets by your account and your profile were removed", authored)
                    if authored else _("your profile was removed"))
        else:
            what = ngettext("your %(num)s tweet now carries a new pseudonym that cannot be linked to the old one, "
                            "and your profile's location, description and link were cleared",
                            "your %(num)s tweets now carry a new pseudonym that cannot be linked to the old one, "
                            "and your profile's location, description and link were cleared", authored)
        done.append({"dataset": d["dataset"], "what": what, "version": releases.get(d["dataset"])})
    referring = sum(d["referring_rows"] for d in datasets)
    authored_total = sum(d["authored_tweets"] for d in datasets)
    remains = []
    if referring:
        remains.append(ngettext(
            "%(num)s tweet by other accounts still mentions your account, with your id replaced by a pseudonym "
            "that cannot be linked to you.",
            "%(num)s tweets by other accounts still mention your account, with your id replaced by a pseudonym "
            "that cannot be linked to you.", referring))
    if remedy == "rehash" and authored_total:
        remains.append(ngettext(
            "Your own %(num)s tweet stays in the datasets, shown only under the new pseudonym, in the public and "
            "in the licensed copy.",
            "Your own %(num)s tweets stay in the datasets, shown only under the new pseudonym, in the public and "
            "in the licensed copy.", authored_total))
    if not remains:
        remains.append(_("Nothing of your account remains in these datasets."))
    headline = {
        "remove": ngettext("Your account was removed from %(num)s dataset, and corrected releases were published.",
                           "Your account was removed from %(num)s datasets, and corrected releases were published.",
                           len(datasets)),
        "rehash": ngettext("Your account was re-hashed in %(num)s dataset, and corrected releases were published.",
                           "Your account was re-hashed in %(num)s datasets, and corrected releases were published.",
                           len(datasets)),
    }.get(remedy) or ngettext("Your account was corrected in %(num)s dataset, and corrected releases were published.",
                              "Your account was corrected in %(num)s datasets, and corrected releases were published.",
                              len(datasets))
    return {
        "remedy": remedy,
        "headline": headline,
        "done": done,
        "remains": remains,
        "earlier_copies": _("People who downloaded an earlier version were told to replace it with the corrected one."),
    }
