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
would hold the costs timer. Each read goes through shared/azure_retry.py (the loop the bill check shares):
tried up to `attempts` times while the check's budget lasts, waiting Retry-After (or the retry delay); past
that the account is pending, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.azure_retry import Budget, ServicePending, call_within_budget, retry_after_seconds

if TYPE_CHECKING:
    from azure.mgmt.monitor import MonitorManagementClient

    from shared.azure_clients import ModelAccount

__all__ = ["Budget", "ServicePending", "read_account_tokens", "retry_after_seconds"]

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
READ_ROLE = "Microsoft.Insights/metrics/read on the account (infra's model account reader role, or Monitoring Reader)"


@dataclass(frozen=True)
class AccountTokens:
    """One deployment's tokens in one window, as the account metered them."""

    deployment: str
    prompt_tokens: int
    generated_tokens: int


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
    Raises ServicePending when the metrics could not be read completely (shared/azure_retry.py)."""
    grain = grain_minutes(window_minutes)

    def read(timeout: float) -> Any:
        return client.metrics.list(
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

    response, attempted = call_within_budget(read, budget, who=account.name, role=READ_ROLE)
    return _tokens(response, account, window_minutes), attempted.requests, attempted.retries


def _tokens(response: Any, account: ModelAccount, window_minutes: int) -> dict[tuple[datetime, str], AccountTokens]:
    """Sum each deployment's points per window; a series count at TOP may be cut short (pending)."""
    found: dict[tuple[datetime, str], list[Any]] = {}
    for metric in response.value or ():
        name = str(getattr(metric.name, "value", "") or "")
        if name.casefold() not in (PROMPT_METRIC.casefold(), GENERATED_METRIC.casefold()):
            continue
        series_list = metric.timeseries or []
        if len(series_list) >= TOP:
            raise ServicePending(f"{account.name}: {len(series_list)} deployment series, the most one read returns")
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
