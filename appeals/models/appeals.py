"""Appeals, their timeline, messages with the owner and internal notes."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from appeals import status as status_table
from appeals.db import Base, utcnow

# The status vocabulary and its sets come from THE status table (appeals/status.py).
APPEAL_STATUSES = status_table.STATUSES
CLOSED_STATUSES = status_table.FINAL
OPEN_STATUSES = status_table.OPEN
REASONS = ("included_in_error", "compromised", "other")
REMEDIES = ("remove", "rehash")


class Appeal(Base):
    """One owner's appeal against their account's presence in every dataset it appears in."""

    __tablename__ = "appeals"
    __table_args__ = (
        Index("ix_appeals_status_created", "status", "created_at"),
        Index("ix_appeals_status_due", "status", "due_at"),
        Index("ix_appeals_status_footprint", "status", "footprint_size"),
        Index("ix_appeals_assignee_status", "assigned_to_id", "status"),
        Index("ix_appeals_account_created", "account_id", "created_at"),
        # The live claims (touched in the last idle period): the queue's "unassigned" counts leave them out,
        # reading this index alone (an index-only scan: every column those counts need is in it).
        Index("ix_appeals_claim_cover", "claim_touched_at", "assigned_to_id", "status", "due_at", "reason",
              "created_at"),
        # The queue over every status, oldest or newest first: one index walk instead of a merge per status.
        Index("ix_appeals_created_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[str] = mapped_column(String(32), default="filed")
    reason: Mapped[str] = mapped_column(String(32))
    statement: Mapped[str] = mapped_column(Text)
    contact_email: Mapped[str] = mapped_column(String(254))
    compromised_from: Mapped[date | None] = mapped_column(Date)
    compromised_until: Mapped[date | None] = mapped_column(Date)
    # Set when a re-appeal within the cool-down brings new information.
    new_information: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # SLA clock: when a decision is due.
    due_at: Mapped[datetime] = mapped_column(DateTime)
    # Footprint at filing: sorting by size must not reach the engine per row.
    footprint_size: Mapped[int] = mapped_column(Integer, default=0)
    # issue 16: the language the owner filed in; emails use it when the account stores no choice.
    language: Mapped[str | None] = mapped_column(String(16))

    # Claim: at most one holder; expires after an idle time (see services.review).
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    claim_touched_at: Mapped[datetime | None] = mapped_column(DateTime)

    info_requested_at: Mapped[datetime | None] = mapped_column(DateTime)
    info_due_at: Mapped[datetime | None] = mapped_column(DateTime)

    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    decision_remedy: Mapped[str | None] = mapped_column(String(16))
    decision_reason_code: Mapped[str | None] = mapped_column(String(64))
    decision_statement: Mapped[str | None] = mapped_column(Text)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)

    # issue 13: set when the appeal is escalated and never cleared: it stays with senior reviewers,
    # also after a request for information and the owner's reply.
    senior_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())

    # Optimistic concurrency: every change bumps it; stale actions are refused (409).
    version: Mapped[int] = mapped_column(Integer, default=1)

    account = relationship("Account", lazy="joined")
    assigned_to = relationship("Staff", foreign_keys=[assigned_to_id], lazy="joined")
    datasets = relationship(
        "AppealDataset", lazy="selectin", cascade="all, delete-orphan", order_by="AppealDataset.dataset"
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class _AppealCountKey:
    """The key and count both maintained count tables share (services/queue_counts.py keeps them)."""

    status: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    due_day: Mapped[date] = mapped_column(Date, primary_key=True)
    created_day: Mapped[date] = mapped_column(Date, primary_key=True)
    appeals: Mapped[int] = mapped_column(Integer, default=0)


class AppealCount(_AppealCountKey, Base):
    """How many appeals have each status, reason, SLA due day and filing day: the queue's counts per status,
    its overdue count and its minimum-age filter without a GROUP BY over every appeal. Kept by
    services/queue_counts.py in the same flush as every change (status is the only key that ever changes)."""

    __tablename__ = "appeal_counts"
    # The counts not yet past due (due today or later: a few weeks of rows), which the overdue count
    # subtracts from the totals, read without walking every day of history.
    __table_args__ = (Index("ix_appeal_counts_status_due", "status", "due_day"),)


class AppealDatasetCount(_AppealCountKey, Base):
    """The same counts per dataset an appeal appeared in (`appeal_datasets`): the queue's dataset filter
    without a GROUP BY over the dataset's appeals. Kept by services/queue_counts.py with appeal_counts."""

    __tablename__ = "appeal_dataset_counts"

    __table_args__ = (Index("ix_appeal_dataset_counts_status_due", "dataset", "status", "due_day"),)

    # First in the key, as in migration 0011: the dataset filter reads one dataset's rows.
    dataset: Mapped[str] = mapped_column(String(128), primary_key=True, sort_order=-1)


class AppealTotal(Base):
    """How many appeals have each status and reason, over all appeals (dataset "") and per dataset: the
    queue's counts per status read from a few dozen rows instead of a row per day of history. Kept by
    services/queue_counts.py with the counts above."""

    __tablename__ = "appeal_totals"

    dataset: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    appeals: Mapped[int] = mapped_column(Integer, default=0)


class AppealDataset(Base):
    """A dataset the appealing account appeared in when the appeal was filed."""

    __tablename__ = "appeal_datasets"
    __table_args__ = (
        # Other filters combined with the dataset read (dataset -> appeal ids) from this index alone.
        Index("ix_appeal_datasets_dataset_appeal", "dataset", "appeal_id"),
        # The queue's page for one dataset walks one of these per status, in the sort's order, instead of
        # walking the appeals of that status and looking each one up here (issue 15).
        Index("ix_appeal_datasets_queue_created", "dataset", "appeal_status", "appeal_created_at"),
        Index("ix_appeal_datasets_queue_due", "dataset", "appeal_status", "appeal_due_at"),
        Index("ix_appeal_datasets_queue_footprint", "dataset", "appeal_status", "appeal_footprint"),
    )

    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), primary_key=True)
    dataset: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    authored_tweets: Mapped[int] = mapped_column(Integer, default=0)
    referring_rows: Mapped[int] = mapped_column(Integer, default=0)
    hashed_publicly: Mapped[bool] = mapped_column(Boolean, default=True)
    # Copies of the appeal's status and sort keys, kept by services/queue_counts.py in the flush that
    # writes the appeal (the status is the only one that ever changes).
    appeal_status: Mapped[str] = mapped_column(String(32))
    appeal_created_at: Mapped[datetime] = mapped_column(DateTime)
    appeal_due_at: Mapped[datetime] = mapped_column(DateTime)
    appeal_footprint: Mapped[int] = mapped_column(Integer)


class AppealEvent(Base):
    """One entry of an appeal's timeline: a status change, with its public note."""

    __tablename__ = "appeal_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    status_from: Mapped[str | None] = mapped_column(String(32))
    status_to: Mapped[str] = mapped_column(String(32))
    actor_kind: Mapped[str] = mapped_column(String(16))  # account | staff | system
    actor_id: Mapped[int | None] = mapped_column(Integer)
    # Text the owner may read (a statement of reasons, release versions...).
    public_note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(JSON)


class Message(Base):
    """A message between the owner and the review team, visible to the owner."""

    __tablename__ = "appeal_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    author_kind: Mapped[str] = mapped_column(String(16))  # account | staff
    author_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    body: Mapped[str] = mapped_column(Text)


class InternalNote(Base):
    """A note among staff; never shown to the owner."""

    __tablename__ = "internal_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    body: Mapped[str] = mapped_column(Text)
