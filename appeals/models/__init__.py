"""The database models, one module per aggregate; importing this package registers them all."""

from appeals.models.accounts import Account, ApiToken
from appeals.models.appeals import (
    APPEAL_STATUSES,
    OPEN_STATUSES,
    REASONS,
    REMEDIES,
    Appeal,
    AppealCount,
    AppealDataset,
    AppealDatasetCount,
    AppealEvent,
    AppealTotal,
    InternalNote,
    Message,
)
from appeals.models.audit import AuditEntry
from appeals.models.corrections import Correction, CorrectionRun, StandingDecision
from appeals.models.evidence import Attachment  # issue 15
from appeals.models.downloads import DownloadLog, DownloadNotice, DownloadRequest, Researcher
from appeals.models.outbox import OutboxMessage
from appeals.models.reference import MessageTemplate, MessageTemplateBody, ReasonCode
from appeals.models.staff import STAFF_ROLES, Staff, StaffInvitation

__all__ = [
    "APPEAL_STATUSES", "OPEN_STATUSES", "REASONS", "REMEDIES", "STAFF_ROLES",
    "Account", "ApiToken", "Appeal", "AppealCount", "Attachment", "AppealDataset", "AppealDatasetCount",
    "AppealEvent", "AppealTotal", "AuditEntry",
    "Correction", "CorrectionRun", "DownloadLog", "DownloadNotice", "DownloadRequest",
    "InternalNote", "Message", "MessageTemplate", "MessageTemplateBody", "OutboxMessage", "ReasonCode",
    "Researcher", "Staff", "StaffInvitation", "StandingDecision",
]
