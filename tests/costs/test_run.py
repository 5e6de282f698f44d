"""The costs run end to end on the Azure Monitor stand-in and Azurite, through the real SDK clients.

Metrics are written straight into the stand-in's AppMetrics (as App Insights would have); the run
reads them with LogsQueryClient, uploads with LogsIngestionClient, records progress in Azurite,
and every assertion reads the summaries back the way dashboards and alerts do (latest complete
revision per window, shared/logs/kql/cost-summary-latest.kql).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal
from types import SimpleNamespace
from typing import IO, Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.monitor.query import LogsQueryStatus

from shared.costs.progress import InMemoryProgressStore
from shared.costs.query import usage_query
from shared.costs.run import CostUploadError, run_costs, upload_policy
from shared.errors import QueryError
from shared.logs.kql import load_query
from standins.monitor.config import DEFAULT_APP_RESOURCE_ID
from tests.support.costs import CostStack, metric, usage_rows
from tests.support.sections import settings_with

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 27, 10, 20, tzinfo=UTC)
H = dt.timedelta(hours=1)
DAY_START = dt.datetime(2026, 11, 27, tzinfo=UTC)
# Per 1M tokens, from shared/costs/prices/catalog.json, written out independently of the code.
PRICES = {"gpt-4o": (Decimal("2.50"), Decimal("1.25"), Decimal("10.00")),
          "gpt-4o-mini": (Decimal("0.15"), Decimal("0.075"), Decimal("0.60"))}
HOSTILE_USERS = ['x" | take 0 //', "a\\\" or 1==1 or \"", "line1\nline2 | project-away *", "back\\slash\\",
                 "pipe | summarize count()", "(none)"]

MakeStack = Callable[..., CostStack]


def expected_cost(model: str, prompt: int, cached: int, completion: int) -> Decimal:
    price_in, price_cached, price_out = (p / 1_000_000 for p in PRICES[model])
    return (prompt - cached) * price_in + cached * price_cached + completion * price_out


def cents(amount: Decimal | float) -> Decimal:
    return Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def seed_day(stack: CostStack) -> None:
    t = DAY_START + 7 * H
    stack.insert_metrics(
        usage_rows(t + dt.timedelta(minutes=10), 1000, 500, 200, requests=2)
        + usage_rows(t + dt.timedelta(minutes=40), 3000, 1000)
        + usage_rows(t + H + dt.timedelta(minutes=5), 123457, 65432, 1111, requests=3,
                     subscription="team-b", user="bob", deployment="my-gpt4o-prod")
        + usage_rows(t + 2 * H + dt.timedelta(minutes=59), 777, 333, user=None, deployment="gpt-4o-mini")
        + usage_rows(t + 2 * H + dt.timedelta(minutes=30), 50, 5, deployment="mystery-model")
        + usage_rows(t + 3 * H + dt.timedelta(minutes=10), 10, 20)  # the open window (10:00-11:00)
    )


def by_key(rows: Iterable[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    keyed = {}
    for row in rows:
        key = (row["WindowStart"], row["SubscriptionId"], row["UserId"], row["Model"], row["Deployment"])
        assert key not in keyed, f"two rows for {key}: a window counted twice"
        keyed[key] = row
    return keyed


def totals(rows: Iterable[dict[str, Any]]) -> tuple[int, Decimal]:
    rows = list(rows)
    return (sum(row["TotalTokens"] for row in rows),
            sum((Decimal(str(row["TotalCost"])) for row in rows if row["TotalCost"] is not None), Decimal(0)))


def test_costs_equal_tokens_times_prices_to_the_cent(make_cost_stack: MakeStack) -> None:
    stack = make_cost_stack()
    seed_day(stack)
    summary = run_costs(stack.settings, now=NOW, clients=stack.clients())

    assert [(o.window.start.hour, o.final, o.status) for o in summary.windows] == [
        (7, True, "uploaded"), (8, True, "uploaded"), (9, True, "uploaded"), (10, False, "uploaded")]
    rows = by_key(stack.latest(DAY_START, DAY_START + 24 * H))
    alice = rows[(DAY_START + 7 * H, "team-a", "alice", "gpt-4o", "gpt-4o")]
    assert (alice["Requests"], alice["PromptTokens"], alice["CachedPromptTokens"],
            alice["CompletionTokens"], alice["TotalTokens"]) == (3, 4000, 200, 1500, 5500)
    assert Decimal(str(alice["TotalCost"])) == expected_cost("gpt-4o", 4000, 200, 1500) == Decimal("0.02475")
    assert Decimal(str(alice["CachedPromptCost"])) == Decimal("0.00025")
    assert alice["Currency"] == "USD" and alice["Unpriced"] is False and alice["IsFinal"] is True

    bob = rows[(DAY_START + 8 * H, "team-b", "bob", "gpt-4o", "my-gpt4o-prod")]  # deployment map applied
    exact = expected_cost("gpt-4o", 123457, 1111, 65432)
    assert Decimal(str(bob["TotalCost"])) == exact.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)
    assert cents(bob["TotalCost"]) == cents(exact) == Decimal("0.96")

    nobody = rows[(DAY_START + 9 * H, "team-a", "(none)", "gpt-4o-mini", "gpt-4o-mini")]  # missing user kept
    assert nobody["TotalTokens"] == 1110

    mystery = rows[(DAY_START + 9 * H, "team-a", "alice", "mystery-model", "mystery-model")]
    assert mystery["Unpriced"] is True and mystery["TotalCost"] is None and mystery["TotalTokens"] == 55
    assert summary.unpriced_models == ("mystery-model",) and summary.unpriced_tokens == 55

    open_window = rows[(DAY_START + 10 * H, "team-a", "alice", "gpt-4o", "gpt-4o")]
    assert open_window["IsFinal"] is False and open_window["TotalTokens"] == 30

    all_tokens, all_cost = totals(rows.values())
    assert all_tokens == summary.tokens["TotalTokens"] == 5500 + 123457 + 65432 + 1110 + 55 + 30
    assert all_cost == summary.cost_by_currency["USD"]
    spend = {(s.subscription_id, s.currency): s for s in summary.spend}
    assert spend[("team-b", "USD")].day_cost == spend[("team-b", "USD")].month_cost == Decimal(str(bob["TotalCost"]))
    assert spend[("team-a", "")].day_unpriced_tokens == 55


def test_estimated_tokens_and_an_unmetered_cache_discount_are_labelled(make_cost_stack: MakeStack) -> None:
    stack = make_cost_stack()
    t = DAY_START + 7 * H
    stack.insert_metrics(
        # alice through azure-openai-emit-token-metric: no cached metric; two calls streamed (APIM
        # estimates them), one from a policy without the Streamed dimension (cannot be shown exact).
        usage_rows(t + dt.timedelta(minutes=10), 1000, 500, requests=2)
        + usage_rows(t + dt.timedelta(minutes=20), 400, 100, requests=2, streamed="True")
        + usage_rows(t + dt.timedelta(minutes=30), 100, 10, streamed=None)
        # bob through llm-emit-token-metric: every call had its cached tokens metered.
        + usage_rows(t + dt.timedelta(minutes=40), 2000, 100, 500, requests=2, user="bob")
    )
    summary = run_costs(stack.settings, now=NOW, clients=stack.clients())
    rows = by_key(stack.latest(DAY_START, DAY_START + 24 * H))
    alice = rows[(t, "team-a", "alice", "gpt-4o", "gpt-4o")]
    assert (alice["Requests"], alice["EstimatedRequests"], alice["EstimatedPromptTokens"],
            alice["EstimatedCompletionTokens"], alice["EstimatedTotalTokens"]) == (5, 3, 500, 110, 610)
    # Estimated tokens are in the totals and priced like them; EstimatedCost says how much rests on them.
    assert Decimal(str(alice["TotalCost"])) == expected_cost("gpt-4o", 1500, 0, 610)
    assert Decimal(str(alice["EstimatedCost"])) == expected_cost("gpt-4o", 500, 0, 110)
    # No cached metric: cached tokens (if any) were priced at the input price, and the row says so.
    assert alice["CachedPromptTokens"] == 0 and alice["CacheDiscountMetered"] is False
    bob = rows[(t, "team-a", "bob", "gpt-4o", "gpt-4o")]
    assert bob["CacheDiscountMetered"] is True and bob["EstimatedRequests"] == 0 and bob["EstimatedCost"] == 0
    assert Decimal(str(bob["TotalCost"])) == expected_cost("gpt-4o", 2000, 500, 100)
    estimated = expected_cost("gpt-4o", 500, 0, 110)
    assert summary.estimated_cost_by_currency == {"USD": estimated}
    share = estimated * 100 / summary.cost_by_currency["USD"]
    assert f"{share:.1f}% on estimated tokens" in summary.line()
    assert "1500 prompt tokens without a metered cache discount (priced at input)" in summary.line()
    # The workbook's panel, run on the stand-in, shows the same figures.
    from tools.build_workbook import PANELS

    panel = next(panel for panel in PANELS if panel.name == "estimated-share")
    query = load_query(panel.source, {"start_time": DAY_START, "end_time": DAY_START + 24 * H}) + panel.tail
    [shown] = stack.kql(query)
    assert Decimal(str(shown["EstimatedCost"])) == estimated and shown["EstimatedTokens"] == 610
    assert shown["PromptTokensCacheUnmetered"] == 1500  # alice's; bob's discount was metered
    assert shown["EstimatedCostPercent"] == round(float(share), 1)


def test_three_reruns_change_no_total_and_upload_nothing(make_cost_stack: MakeStack) -> None:
    stack = make_cost_stack()
    seed_day(stack)
    first = run_costs(stack.settings, now=NOW, clients=stack.clients())
    before = totals(stack.latest(DAY_START, DAY_START + 24 * H))
    for _ in range(3):
        again = run_costs(stack.settings, now=NOW, clients=stack.clients())
        assert again.rows_uploaded == 0
        assert {o.status for o in again.windows} == {"unchanged"}
        assert totals(stack.latest(DAY_START, DAY_START + 24 * H)) == before
        assert again.cost_by_currency == first.cost_by_currency


def test_late_metrics_are_counted_in_their_window_by_the_next_run(make_cost_stack: MakeStack) -> None:
    stack = make_cost_stack()
    seed_day(stack)
    run_costs(stack.settings, now=NOW, clients=stack.clients())
    tokens_before, _ = totals(stack.latest(DAY_START, DAY_START + 24 * H))
    stack.insert_metrics(usage_rows(DAY_START + 8 * H + dt.timedelta(minutes=30), 400, 100,
                                    subscription="team-b", user="bob", deployment="my-gpt4o-prod"))

    later = run_costs(stack.settings, now=NOW + dt.timedelta(minutes=10), clients=stack.clients())
    assert [o.window.start.hour for o in later.windows if o.status == "uploaded"] == [8]
    rows = by_key(stack.latest(DAY_START, DAY_START + 24 * H))
    bob = rows[(DAY_START + 8 * H, "team-b", "bob", "gpt-4o", "my-gpt4o-prod")]
    assert bob["PromptTokens"] == 123457 + 400 and bob["Requests"] == 4
    assert totals(rows.values())[0] == tokens_before + 500
    revisions = stack.kql("TokenCostSummary_CL | where SubscriptionId == 'team-b' | summarize by Revision")
    assert len(revisions) == 2  # the old revision is still stored; readers ignore it


def test_window_becomes_final_after_the_ingestion_delay(make_cost_stack: MakeStack) -> None:
    stack = make_cost_stack()
    seed_day(stack)
    first = run_costs(stack.settings, now=NOW, clients=stack.clients())
    assert first.final_through == DAY_START + 10 * H
    at_11_10 = run_costs(stack.settings, now=DAY_START + 11 * H + dt.timedelta(minutes=10), clients=stack.clients())
    assert [(o.window.start.hour, o.final) for o in at_11_10.windows][-2:] == [(10, False), (11, False)]
    assert at_11_10.final_through == DAY_START + 10 * H
    at_11_15 = run_costs(stack.settings, now=DAY_START + 11 * H + dt.timedelta(minutes=15), clients=stack.clients())
    ten = next(o for o in at_11_15.windows if o.window.start.hour == 10)
    assert (ten.final, ten.status) == (True, "uploaded")  # same tokens, now final: a new revision
    assert at_11_15.final_through == DAY_START + 11 * H
    rows = [r for r in stack.latest(DAY_START + 10 * H, DAY_START + 11 * H)]
    assert [(r["IsFinal"], r["TotalTokens"]) for r in rows] == [(True, 30)]


def test_crash_between_upload_and_progress_mark_does_not_double_count(make_cost_stack: MakeStack) -> None:
    stack = make_cost_stack()
    seed_day(stack)
    progress = InMemoryProgressStore()
    progress.fail_next_save(RuntimeError("process killed"))  # the run dies between upload and progress mark
    clients = stack.clients(progress=progress)
    with pytest.raises(RuntimeError, match="process killed"):
        run_costs(stack.settings, now=NOW, clients=clients)
    once = totals(stack.latest(DAY_START, DAY_START + 24 * H))
    rerun = run_costs(stack.settings, now=NOW, clients=clients)
    assert {o.status for o in rerun.windows} == {"uploaded"}  # nothing was marked, so all is redone
    assert totals(stack.latest(DAY_START, DAY_START + 24 * H)) == once
    raw = stack.kql("TokenCostSummary_CL | summarize Tokens = sum(TotalTokens)")[0]["Tokens"]
    assert raw == 2 * once[0]  # both revisions are stored; readers count one


class FlakyIngestion:
    """Wraps the real client; requests carrying rows of the given windows fail `failures` times."""

    def __init__(self, inner: Any, windows: set[str], failures: int) -> None:
        self.inner, self.windows, self.failures = inner, windows, failures
        self.calls = 0

    def upload(self, rule_id: str, stream: str, logs: IO[bytes], **kwargs: Any) -> None:
        body = logs.read()
        rows = json.loads(gzip.decompress(body))
        if any(row["WindowStart"][:13] in self.windows for row in rows) and self.failures > 0:
            self.failures -= 1
            raise HttpResponseError("503 Service Unavailable")
        self.inner.upload(rule_id, stream, io.BytesIO(body), **kwargs)


def test_failed_chunk_is_retried(make_cost_stack: MakeStack) -> None:
    stack = make_cost_stack()
    seed_day(stack)
    clients = stack.clients()
    clients.ingestion = FlakyIngestion(clients.ingestion, {"2026-11-27T08"}, failures=1)  # type: ignore[assignment]
    summary = run_costs(stack.settings, now=NOW, clients=clients)
    assert summary.retries == 1 and not summary.failed_windows
    assert totals(stack.latest(DAY_START, DAY_START + 24 * H))[0] == summary.tokens["TotalTokens"]


def test_failed_upload_leaves_the_window_to_the_next_run(make_cost_stack: MakeStack) -> None:
    stack = make_cost_stack(upload_attempts=2)
    seed_day(stack)
    run_costs(stack.settings, now=NOW, clients=stack.clients())
    before = by_key(stack.latest(DAY_START, DAY_START + 24 * H))
    stack.insert_metrics(usage_rows(DAY_START + 9 * H + dt.timedelta(minutes=1), 1000, 1000))
    stack.insert_metrics(usage_rows(DAY_START + 9 * H + dt.timedelta(minutes=2), 5, 5, user="carol"))

    clients = stack.clients()
    clients.ingestion = FlakyIngestion(clients.ingestion, {"2026-11-27T09"}, failures=2)  # type: ignore[assignment]
    with pytest.raises(CostUploadError) as failure:
        run_costs(stack.settings, now=NOW, clients=clients)
    assert [w.start.hour for w in failure.value.summary.failed_windows] == [9]
    # None or part of the new revision arrived; readers still see the previous complete one, not a mix.
    assert by_key(stack.latest(DAY_START, DAY_START + 24 * H)) == before

    recovered = run_costs(stack.settings, now=NOW, clients=stack.clients())
    assert [o.window.start.hour for o in recovered.windows if o.status == "uploaded"] == [9]
    after = by_key(stack.latest(DAY_START + 9 * H, DAY_START + 10 * H))
    assert after[(DAY_START + 9 * H, "team-a", "alice", "gpt-4o", "gpt-4o")]["TotalTokens"] == 2000
    assert after[(DAY_START + 9 * H, "team-a", "carol", "gpt-4o", "gpt-4o")]["TotalTokens"] == 10


def test_results_over_the_row_limit_are_split_until_they_fit(make_cost_stack: MakeStack) -> None:
    limited, unlimited = make_cost_stack(max_rows=7), make_cost_stack()
    rows = [row for user in range(40) for hour in (7, 8, 9)
            for row in usage_rows(DAY_START + hour * H + dt.timedelta(minutes=user), 100 + user, 10,
                                  user=f"user-{user:03d}")]
    for stack in (limited, unlimited):
        stack.insert_metrics(rows)
    split = run_costs(limited.settings, now=NOW, clients=limited.clients())
    whole = run_costs(unlimited.settings, now=NOW, clients=unlimited.clients())
    assert whole.query_splits == 0 and split.query_splits > 3  # time halves, then user parts
    assert split.tokens == whole.tokens and split.cost_by_currency == whole.cost_by_currency

    def keyed(stack: CostStack) -> dict[tuple[Any, ...], tuple[int, Any]]:
        return {key: (row["TotalTokens"], row["TotalCost"])
                for key, row in by_key(stack.latest(DAY_START, DAY_START + 24 * H, direct=True)).items()}

    assert keyed(limited) == keyed(unlimited) and len(keyed(limited)) == 120


class PartialQueries:
    """Answers the first `partials` usage queries with a non-limit partial result (a timeout)."""

    def __init__(self, inner: Any, partials: int) -> None:
        self.inner, self.partials = inner, partials

    def query_workspace(self, workspace_id: str, query: str, **kwargs: Any) -> Any:
        if self.partials > 0 and "user_hash_prefixes" in query:
            self.partials -= 1
            error = SimpleNamespace(code="PartialError", message="Query execution has exceeded the allowed limits "
                                    "(timeout)", details=None)
            return SimpleNamespace(status=LogsQueryStatus.PARTIAL, partial_error=error, partial_data=[])
        return self.inner.query_workspace(workspace_id, query, **kwargs)


def test_partial_result_is_retried_then_fails_without_marking(make_cost_stack: MakeStack) -> None:
    stack = make_cost_stack(query_attempts=2)
    seed_day(stack)
    with pytest.raises(QueryError, match="partial result 2 times"):
        run_costs(stack.settings, now=NOW, clients=stack.clients(query=PartialQueries(stack.query, 2)))
    clients = stack.clients()
    assert clients.progress.final_through() is None
    assert stack.kql("TokenCostSummary_CL | count")[0]["Count"] == 0

    retried = run_costs(stack.settings, now=NOW, clients=stack.clients(query=PartialQueries(stack.query, 1)))
    assert retried.retries == 1 and retried.final_through == DAY_START + 10 * H


def test_the_query_and_the_upload_take_their_values_from_the_settings() -> None:
    costs = settings_with(
        COST_RETRY_DELAY_SECONDS="7.5", COST_QUERY_ATTEMPTS="4", COST_UPLOAD_ATTEMPTS="6", COST_UPLOAD_CHUNK_ROWS="123",
        COST_WINDOW_MINUTES="30", COST_METRICS_SCHEMA="customMetrics", COST_METRICS_RESOURCE_ID=DEFAULT_APP_RESOURCE_ID,
        LOGS_INGESTION_RULE_ID="dcr-77", COST_DCR_STREAM="Custom-Elsewhere_CL",
    ).costs  # fmt: skip
    query = usage_query(costs)
    assert (query.attempts, query.retry_delay_seconds, query.split_unit_minutes) == (4, 7.5, 30)
    assert (query.file, query.resource_id) == ("token-usage-by-window-custom-metrics.kql", DEFAULT_APP_RESOURCE_ID)
    assert query.parameters == {"window_width": dt.timedelta(minutes=30)}
    policy = upload_policy(costs)
    assert (policy.attempts, policy.retry_delay_seconds, policy.chunk_rows) == (6, 7.5, 123)
    assert (policy.rule_id, policy.stream, policy.what) == ("dcr-77", "Custom-Elsewhere_CL", "cost summary")


def test_a_run_pauses_between_attempts_as_cost_retry_delay_seconds_says(make_cost_stack: MakeStack) -> None:
    stack = make_cost_stack(query_attempts=2, upload_attempts=2)
    seed_day(stack)
    settings = replace(stack.settings, retry_delay_seconds=7.5)  # not the default 5: it must come from here
    clients = stack.clients(query=PartialQueries(stack.query, 1))
    clients.ingestion = FlakyIngestion(clients.ingestion, {"2026-11-27T08"}, failures=1)  # type: ignore[assignment]
    pauses: list[float] = []
    summary = run_costs(settings, now=NOW, clients=clients, sleep=pauses.append)
    assert pauses == [7.5, 7.5]  # the usage query's retry, then the upload's
    assert summary.retries == 2 and not summary.failed_windows


def test_hostile_user_ids_are_values_not_query_text(make_cost_stack: MakeStack) -> None:
    stack = make_cost_stack(max_rows=2)  # forces user parts, so the hashed filter runs too
    at = DAY_START + 9 * H
    stack.insert_metrics([row for index, user in enumerate(HOSTILE_USERS)
                          for row in usage_rows(at + dt.timedelta(minutes=index), 10 + index, 1, user=user)])
    summary = run_costs(stack.settings, now=NOW, clients=stack.clients())
    assert summary.query_splits > 0
    rows = stack.latest(DAY_START, DAY_START + 24 * H, direct=True)
    assert sorted((row["UserId"], row["PromptTokens"]) for row in rows) == sorted(
        (user, 10 + index) for index, user in enumerate(HOSTILE_USERS))


def test_custom_metrics_schema_gives_the_same_summaries(make_cost_stack: MakeStack) -> None:
    workspace, insights = make_cost_stack(), make_cost_stack(metrics_schema="customMetrics")
    # As in Azure: customMetrics asked of the App Insights resource (LogsQueryClient.query_resource).
    component = make_cost_stack(metrics_schema="customMetrics", metrics_resource_id=DEFAULT_APP_RESOURCE_ID)
    for stack in (workspace, insights, component):
        seed_day(stack)
        run_costs(stack.settings, now=NOW, clients=stack.clients())

    def content(stack: CostStack) -> dict[tuple[Any, ...], tuple[Any, ...]]:
        return {key: tuple(row[c] for c in ("Requests", "PromptTokens", "CachedPromptTokens", "CompletionTokens",
                                             "TotalTokens", "TotalCost", "Unpriced"))
                for key, row in by_key(stack.latest(DAY_START, DAY_START + 24 * H, direct=True)).items()}

    assert content(insights) == content(workspace) == content(component) and len(content(workspace)) == 5


def test_month_to_date_adds_earlier_windows_from_the_summaries(make_cost_stack: MakeStack) -> None:
    stack = make_cost_stack(recompute_windows=1)
    yesterday = DAY_START - 24 * H
    stack.insert_metrics(usage_rows(yesterday + 9 * H, 1_000_000, 0, subscription="team-b"))  # $2.50
    stack.insert_metrics(usage_rows(DAY_START - 31 * 24 * H, 1_000_000, 0, subscription="team-b"))  # last month
    run_costs(stack.settings, now=yesterday + 10 * H + dt.timedelta(minutes=20), clients=stack.clients())
    stack.insert_metrics(usage_rows(DAY_START + 9 * H, 0, 100_000, subscription="team-b"))  # $1.00
    summary = run_costs(stack.settings, now=NOW, clients=stack.clients())
    assert summary.windows[0].window.start == yesterday + 10 * H  # from the watermark: nothing skipped
    team_b = next(s for s in summary.spend if s.subscription_id == "team-b")
    assert (team_b.day_cost, team_b.month_cost) == (Decimal("1.00"), Decimal("3.50"))
    assert (team_b.day_tokens, team_b.month_tokens) == (100_000, 1_100_000)


def test_summary_line_names_the_figures(make_cost_stack: MakeStack, caplog: pytest.LogCaptureFixture) -> None:
    stack = make_cost_stack()
    seed_day(stack)
    caplog.set_level("INFO", logger="shared.costs.run")
    summary = run_costs(stack.settings, now=NOW, clients=stack.clients())
    # The summary line; the shipped catalog also warns once about the prices it cannot use.
    lines = [r.getMessage() for r in caplog.records if r.name == "shared.costs.run" and r.levelname == "INFO"]
    assert lines == [summary.line()]
    assert "4 windows" in lines[0] and "55 unpriced tokens (mystery-model)" in lines[0]
    assert f"cost {summary.cost_by_currency['USD'].quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN)} USD" in lines[0]
    # Per-step seconds, in run order, within the run's own duration.
    assert list(summary.step_seconds) == ["query", "pricing", "upload", "totals"]
    assert all(seconds >= 0 for seconds in summary.step_seconds.values())
    assert sum(summary.step_seconds.values()) <= summary.duration_seconds
    assert re.search(r"s \(query \d+\.\ds, pricing \d+\.\ds, upload \d+\.\ds, totals \d+\.\ds\)$", lines[0])


def tokens_by(rows: Iterable[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], int]:
    result: dict[tuple[Any, ...], int] = defaultdict(int)
    for row in rows:
        result[tuple(row[k] for k in keys)] += row["TotalTokens"]
    return dict(result)


def test_missing_dimensions_are_grouped_under_none(make_cost_stack: MakeStack) -> None:
    stack = make_cost_stack()
    stack.insert_metrics([*usage_rows(DAY_START + 8 * H, 10, 1, subscription=None, user=None, deployment=None,
                                      api=None),
                          metric(DAY_START + 8 * H, "Total Tokens", 7, user="")])
    run_costs(stack.settings, now=NOW, clients=stack.clients())
    got = tokens_by(stack.latest(DAY_START, DAY_START + 24 * H), "SubscriptionId", "UserId", "Deployment", "ApiId")
    assert got == {("(none)", "(none)", "(none)", "(none)"): 11, ("team-a", "(none)", "gpt-4o", "inference-api"): 7}


def test_alert_data_over_the_row_limit_is_read_in_parts(
    make_cost_stack: MakeStack, caplog: pytest.LogCaptureFixture
) -> None:
    from shared.alerts.data import ranges_for, read_alert_data

    limited, unlimited = make_cost_stack(max_rows=7), make_cost_stack()
    rows = [row for user in range(12) for hour in (7, 8, 9)
            for row in usage_rows(DAY_START + hour * H + dt.timedelta(minutes=user), 100 + user, 10,
                                  user=f"user-{user:03d}")]
    ranges = ranges_for([], NOW, 60)
    frames = []
    for stack in (limited, unlimited):
        stack.insert_metrics(rows)
        run_costs(stack.settings, now=NOW, clients=stack.clients())
        with caplog.at_level("INFO", logger="shared.logs.parts"):
            usage = read_alert_data(stack.query, stack.config.workspace_id, ranges, with_traffic=False, now=NOW).usage
        frames.append(usage.sort_values(["Bucket", "UserId"]).reset_index(drop=True))
    splits = [r for r in caplog.records if r.getMessage().startswith("alert usage for")]
    assert len(splits) > 5  # whole days first (the month to date), then user slices of the last day
    assert len(frames[0]) == 36 and frames[0].equals(frames[1])
    assert int(frames[0]["TotalTokens"].sum()) == sum(3 * (110 + user) for user in range(12))
