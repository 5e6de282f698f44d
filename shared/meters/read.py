"""Read a model account's own token metrics per window and deployment (Azure Monitor Metrics - List).

Which metrics: Microsoft.CognitiveServices/accounts publishes ``ProcessedPromptTokens`` ("Processed Prompt
Tokens": prompt tokens processed, input) and ``GeneratedTokens`` ("Generated Completion Tokens": output),
both unit Count, aggregation Total, time grain PT1M, with the dimension ``ModelDeploymentName`` (also ApiName,
FeatureName, UsageChannel, Region, ModelVersion); ``TokenTransaction`` is their sum
(learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/microsoft-cognitiveservices-accounts-metrics).
We read the two parts, split by deployment, summed per cost window.

Which client: ``MonitorManagementClient.metrics.list`` (azure-mgmt-monitor 7.x; the per-resource Metrics - List
API through ARM, api-version 2024-02-01), not azure-monitor-querymetrics' MetricsClient. MetricsClient calls
only the batch API (``metrics:getBatch`` on a regional ``<region>.metrics.monitor.azure.com``), which "is a
subscription level API, users must have the Monitoring Reader permission for the queried subscription ... Even
if users have Monitoring Reader on all the resources being queried in the batch API, the request fails"
(MicrosoftDocs/azure-monitor-docs articles/azure-monitor/metrics/migrate-to-batch-api.md, "401 authorization
errors"): read access to a whole subscription for a handful of accounts, plus a region setting per account.
Metrics - List needs ``Microsoft.Insights/metrics/read`` on the account only, goes to the ARM endpoint the
costs run already uses (AZURE_RESOURCE_MANAGER_ENDPOINT, same token audience) and is one call per account
per run, far inside ARM's read limits; the batch API exists for callers reading thousands of resources.

Faults: over ARM's limits the answer is 429 with Retry-After (request-limits-and-throttling); 5xx and
timeouts happen too. The SDK's own retries are off (AzureAccess.monitor_client): a Retry-After of minutes
would hold the costs timer. Here each read is tried up to `attempts` times while the check's budget lasts,
waiting Retry-After (or the retry delay); past that the account is pending, with the reason.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.errors import AzureServiceError, describe_azure_error

if TYPE_CHECKING:
    from azure.mgmt.monitor import MonitorManagementClient

    from shared.azure_clients import ModelAccount

METRIC_NAMESPACE = "Microsoft.CognitiveServices/accounts"
PROMPT_METRIC = "ProcessedPromptTokens"
GENERATED_METRIC = "GeneratedTokens"
DEPLOYMENT_DIMENSION = "ModelDeploymentName"
# "top: The maximum number of records to retrieve per resource ID ... Valid only if filter is specified.
# Defaults to 10" (azure-mgmt-monitor metrics.list): an account with more than 10 deployments would lose
# series. A response holding exactly TOP series may have lost some too: that read is pending.
TOP = 100
# Time grains the metrics API aggregates to (its `interval`); the largest that divides the window is asked.
GRAIN_MINUTES = {1: "PT1M", 5: "PT5M", 15: "PT15M", 30: "PT30M", 60: "PT1H", 360: "PT6H", 720: "PT12H", 1440: "P1D"}
# One request's longest wait for an answer (azure-core's default read timeout is 300 s).
REQUEST_TIMEOUT_SECONDS = 30.0
READ_ROLE = "Microsoft.Insights/metrics/read on the account (infra's model account reader role, or Monitoring Reader)"
_RETRIED_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class AccountTokens:
    """One deployment's tokens in one window, as the account metered them."""

    deployment: str
    prompt_tokens: int
    generated_tokens: int


class MetricsPending(AzureServiceError):
    """The account's metrics could not be read within the budget; `reason` says why (for the log line). The
    check catches it: the comparison waits for the next run."""

    def __init__(self, reason: str, retries: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retries = retries


@dataclass
class Budget:
    """The whole check's allowance: the same deadline for every account, `attempts` per read."""

    seconds: float
    attempts: int
    retry_delay_seconds: float
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self._deadline = self.clock() + self.seconds

    @property
    def remaining(self) -> float:
        return max(0.0, self._deadline - self.clock())


def grain_minutes(window_minutes: int) -> int:
    """The largest time grain the metrics API offers that divides the window (1 minute always does)."""
    return max(minutes for minutes in GRAIN_MINUTES if window_minutes % minutes == 0)


def read_account_tokens(
    client: MonitorManagementClient,
    account: ModelAccount,
    start: datetime,
    end: datetime,
    window_minutes: int,
    budget: Budget,
) -> tuple[dict[tuple[datetime, str], AccountTokens], int, int]:
    """{(window start, deployment folded): tokens} over [start, end), the reads made and the retries.
    Raises MetricsPending when the metrics could not be read completely."""
    grain = grain_minutes(window_minutes)
    attempt, reads = 0, 0
    while True:
        attempt += 1
        remaining = budget.remaining
        if remaining <= 0:
            raise MetricsPending(f"{account.name}: the check's {budget.seconds:g} s budget is spent", attempt - 1)
        timeout = min(REQUEST_TIMEOUT_SECONDS, remaining)
        reads += 1
        try:
            response = client.metrics.list(
                account.resource_id,
                timespan=f"{_iso(start)}/{_iso(end)}",
                interval=GRAIN_MINUTES[grain],
                metricnames=f"{PROMPT_METRIC},{GENERATED_METRIC}",
                aggregation="Total",
                top=TOP,
                filter=f"{DEPLOYMENT_DIMENSION} eq '*'",
                metricnamespace=METRIC_NAMESPACE,
                connection_timeout=timeout,
                read_timeout=timeout,
            )
        except Exception as error:  # azure.core errors and socket errors; anything else is a bug: re-raised
            wait = _retry_wait(error, budget)
            if wait is None or attempt >= budget.attempts or wait > budget.remaining:
                raise MetricsPending(_reason(account, error, attempt, wait, budget), attempt - 1) from error
            budget.sleep(wait)
            continue
        return _tokens(response, account, window_minutes), reads, attempt - 1


def _retry_wait(error: Exception, budget: Budget) -> float | None:
    """Seconds to wait before trying again, or None when trying again cannot help (or `error` is not Azure's)."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(error, (ServiceRequestError, ServiceResponseError)):  # connection failed, timed out
        return budget.retry_delay_seconds
    if isinstance(error, HttpResponseError):
        if error.status_code not in _RETRIED_STATUS:
            return None
        asked = retry_after_seconds(getattr(error.response, "headers", None) or {})
        return asked if asked is not None else budget.retry_delay_seconds
    raise error


def retry_after_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Retry-After as seconds (RFC 9110: delay-seconds or an HTTP-date), or the millisecond variants Azure sends."""
    lowered = {name.lower(): value for name, value in headers.items()}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if name in lowered:
            try:
                return max(0.0, float(lowered[name]) / 1000)
            except ValueError:
                pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _reason(account: ModelAccount, error: Exception, attempt: int, wait: float | None, budget: Budget) -> str:
    described = describe_azure_error(error)  # type: ignore[arg-type]
    status = getattr(error, "status_code", None)
    if status in (401, 403):
        return f"{account.name}: {described}; the app's identity needs {READ_ROLE}"
    if wait is None:
        return f"{account.name}: {described}"
    if attempt >= budget.attempts:
        return f"{account.name}: {described} after {attempt} attempts"
    return f"{account.name}: {described}; asked to wait {wait:g} s, past the {budget.remaining:.0f} s of budget left"


def _tokens(response: Any, account: ModelAccount, window_minutes: int) -> dict[tuple[datetime, str], AccountTokens]:
    """Sum each deployment's points per window; a series count at TOP may be cut short (pending)."""
    found: dict[tuple[datetime, str], list[Any]] = {}
    for metric in response.value or ():
        name = str(getattr(metric.name, "value", "") or "")
        if name.casefold() not in (PROMPT_METRIC.casefold(), GENERATED_METRIC.casefold()):
            continue
        series_list = metric.timeseries or []
        if len(series_list) >= TOP:
            raise MetricsPending(f"{account.name}: {len(series_list)} deployment series, the most one read returns")
        for series in series_list:
            deployment = _deployment_of(series)
            for point in series.data or ():
                if point.total is None:  # no calls in that interval
                    continue
                stamp = point.time_stamp.astimezone(UTC)
                window_start = _window_start(stamp, window_minutes)
                entry = found.setdefault((window_start, deployment.casefold()), [deployment, 0, 0])
                entry[1 if name.casefold() == PROMPT_METRIC.casefold() else 2] += round(point.total)
    return {key: AccountTokens(*entry) for key, entry in found.items()}


def _deployment_of(series: Any) -> str:
    for item in series.metadatavalues or ():
        if str(getattr(item.name, "value", "")).casefold() == DEPLOYMENT_DIMENSION.casefold():
            return str(item.value)
    return ""


def _window_start(stamp: datetime, window_minutes: int) -> datetime:
    day = stamp.replace(hour=0, minute=0, second=0, microsecond=0)
    minutes = int((stamp - day).total_seconds() // 60)
    return day + timedelta(minutes=minutes - minutes % window_minutes)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
