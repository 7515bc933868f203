"""Errors raised by the dataset engine; every one is an EngineError."""


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class UnknownDataset(EngineError):
    """No dataset of that name is published."""


class UnknownVersion(EngineError):
    """The dataset has no release with that version number."""


class UnknownFile(EngineError):
    """The file name is not listed in that release's manifest."""


class ImportFailed(EngineError):
    """Input refused; the message names the file, the line and the problem."""


class VerificationFailed(EngineError):
    """A new release failed verification; the message says what was found and where."""


class PublishConflict(EngineError):
    """Someone else published first, or the caller's fence is stale."""


class BadCorrection(EngineError):
    """The correction items are malformed."""
