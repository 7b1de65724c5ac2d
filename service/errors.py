"""Errors of the web and jobs processes: one base class, each error carrying its data."""

from __future__ import annotations

from typing import Any

from statemachines.errors import SteplineError


class ServiceError(SteplineError):
    """Base class of the service's own errors (webhooks, pipelines, runs)."""


class WebhookError(ServiceError):
    """Raised when a webhook request is refused; `status` is the HTTP answer it gets."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SignatureError(WebhookError):
    """Raised when X-Hub-Signature-256 is missing, malformed or does not match the body."""

    status = 401


class PayloadTooLargeError(WebhookError):
    """Raised when a webhook body is larger than STEPLINE_WEBHOOK_MAX_BYTES."""

    status = 413


class MalformedPayloadError(WebhookError):
    """Raised when a webhook body or its headers cannot be parsed into an event."""

    status = 400


class InvalidPipelineError(ServiceError):
    """Raised when a repository's pipeline cannot be parsed or fails validation; lists every diagnostic."""

    def __init__(self, path: str, diagnostics: list[dict[str, Any]]) -> None:
        self.path = path
        self.diagnostics = diagnostics
        first = diagnostics[0]["message"] if diagnostics else "invalid definition"
        super().__init__(f"{path}: {first}")

    @property
    def reason(self) -> str:
        """The run's status_reason: what is wrong, in one line."""
        first = self.diagnostics[0]["message"] if self.diagnostics else "invalid definition"
        return f"invalid pipeline {self.path}: {first}"


class UntrustedPipelineError(InvalidPipelineError):
    """Raised when an untrusted run's pipeline names a resource or pool untrusted runs may not use."""

    def __init__(self, path: str, why_untrusted: str, diagnostics: list[dict[str, Any]]) -> None:
        super().__init__(path, diagnostics)
        self.why_untrusted = why_untrusted

    @property
    def reason(self) -> str:
        shown = "; ".join(d["message"] for d in self.diagnostics[:3])
        more = f"; and {len(self.diagnostics) - 3} more" if len(self.diagnostics) > 3 else ""
        return f"untrusted run ({self.why_untrusted}): {shown}{more}"


class PipelineSourceError(ServiceError):
    """Raised when the pipeline file cannot be read (GitHub or git failed); the job is retried."""

    def __init__(self, repository: str, sha: str, reason: str) -> None:
        super().__init__(f"{repository}@{sha[:12]}: cannot read the pipeline: {reason}")
        self.repository = repository
        self.sha = sha
        self.reason = reason


class IncompleteRunError(ServiceError):
    """Raised when a run record lacks a field its start needs (every writer sets it: a damaged record)."""

    def __init__(self, run_id: str, field: str) -> None:
        super().__init__(f"run {run_id} has no {field}")
        self.run_id = run_id
        self.field = field


class DashboardError(ServiceError):
    """Base class of the dashboard's errors; `status` is the HTTP answer the page or API gives."""

    status = 400


class RunNotFoundError(DashboardError):
    """Raised when a page, API call or action names a run the run index does not hold."""

    status = 404

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run {run_id!r}")
        self.run_id = run_id


class LogCursorError(DashboardError):
    """Raised when a log request's `after` is not a cursor the log API handed out."""

    def __init__(self, after: str) -> None:
        super().__init__(f"after: {after!r} is not a log cursor")
        self.after = after


class StepFunctionsUnavailableError(DashboardError):
    """Raised when Step Functions refuses or cannot answer a call the dashboard makes for a run."""

    status = 502

    def __init__(self, run_id: str, action: str, reason: str) -> None:
        super().__init__(f"{run_id}: {action} failed: {reason}")
        self.run_id = run_id
        self.action = action
        self.reason = reason


class ActionNotAllowedError(DashboardError):
    """Raised when an action does not fit the run's state (e.g. cancelling a finished run)."""

    status = 409

    def __init__(self, run_id: str, action: str, reason: str) -> None:
        super().__init__(f"{run_id}: cannot {action}: {reason}")
        self.run_id = run_id
        self.action = action
        self.reason = reason


class ApprovalNotPendingError(DashboardError):
    """Raised when an approval was already decided, timed out or never existed."""

    status = 409

    def __init__(self, approval_id: str) -> None:
        super().__init__(f"approval {approval_id!r} is not pending")
        self.approval_id = approval_id


class NoInstallationError(ServiceError):
    """Raised when a status must be posted as a GitHub App but neither the run nor the settings name an installation."""

    def __init__(self, app_id: str) -> None:
        super().__init__(
            f"GitHub App {app_id}: no installation id (from the webhook or GITHUB_APP_INSTALLATION_ID)"
        )
        self.app_id = app_id


class StatusPostError(ServiceError):
    """Raised when GitHub did not take a commit status and the rq job should be retried with backoff."""

    def __init__(self, repository: str, sha: str, context: str, reason: str) -> None:
        super().__init__(f"{repository}@{sha[:12]} {context}: {reason}")
        self.repository = repository
        self.sha = sha
        self.context = context
        self.reason = reason


class RunRequestError(DashboardError):
    """Raised when a manual run's request is not valid: a malformed ref or input, an input the pipeline lacks."""

    status = 400

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UnknownSourceError(RunRequestError):
    """Raised when a manual run or a schedule names a repository or ref that GitHub (or git) does not know."""

    status = 404


class SourceUnavailableError(DashboardError):
    """Raised when GitHub (or the local repository) cannot answer what a ref points at right now."""

    status = 503

    def __init__(self, repository: str, reason: str) -> None:
        super().__init__(f"{repository}: cannot resolve the ref now: {reason}")
        self.repository = repository
        self.reason = reason


class RunNotRecordedError(DashboardError):
    """Raised when a manual run cannot be recorded because Redis does not answer (try again)."""

    status = 503

    def __init__(self, reason: str) -> None:
        super().__init__(f"the run was not recorded, try again: {reason}")
        self.reason = reason
