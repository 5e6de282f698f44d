"""The local cost dashboard (tools/dashboard.py): the workbook's panels on the monitor, laid out as one page.

The page's figures from hand-made panel rows (exact sums, breakdowns, budgets and their forecast, escaping),
then the whole stack as `make run` starts it: within about two minutes the page, loaded in headless
Chromium from its printed URL, shows the synthetic traffic's spend as TokenCostSummary_CL holds it.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from azure.monitor.query import LogsQueryClient

from shared.alerts.rules import parse_rules
from shared.alerts.state import AlertRecord
from shared.money import display_money, round_money, to_micros
from standins.stack import Stack, dashboard_url, running_stack
from tests.support.stack import logs_client
from tools.build_workbook import PANELS
from tools.dashboard import SPEND, SPEND_COLUMNS, SpendRow, build_page, render_html
from tools.screenshot_email import find_chromium

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # 27 days of 30 and half a day gone
HOSTILE = "<img src=x onerror=alert(1)>"
RULES = parse_rules(
    """{"currency": "USD", "recipient_groups": {"g": ["a@example.com"]}, "rules": [
      {"name": "daily", "kind": "budget", "scope": "all", "period": "day", "amount": 1, "recipients": "g"},
      {"name": "team-a-month", "kind": "budget", "scope": "subscription:team-a", "period": "month", "amount": 100,
       "recipients": "g"},
      {"name": "per-team", "kind": "budget", "scope": "each:subscription", "period": "month", "amount": 50,
       "recipients": "g"}]}""",
    source="rules.json",
)


def row(at: datetime, subscription: str, model: str, user: str, cost: str, *, currency: str = "USD",
        estimated: str = "0", tokens: int = 1000, unpriced: int = 0) -> SpendRow:  # fmt: skip
    return SpendRow(at, subscription, model, user, "api", currency, to_micros(Decimal(cost)),
                    to_micros(Decimal(estimated)), tokens, unpriced, 1)  # fmt: skip


ROWS = [
    row(NOW - timedelta(hours=1), "team-a", "gpt-5.6-sol", "alice", "0.600001", estimated="0.3"),
    row(NOW - timedelta(hours=2), "team-b", "gpt-5.6-luna", HOSTILE, "0.100002"),
    row(NOW - timedelta(days=3), "team-a", "gpt-5.6-sol", "alice", "40.25"),
    row(NOW - timedelta(days=1), "", "gpt-5.6-terra", "", "2"),  # unused PTU capacity: no subscription
    row(NOW - timedelta(hours=1), "team-b", "mystery", "bob", "0", currency="", tokens=500, unpriced=500),
]


def test_the_spend_panel_is_a_workbook_panel_with_the_columns_the_page_reads() -> None:
    spend = next(panel for panel in PANELS if panel.name == SPEND)
    assert spend.source == "cost-summary-latest.kql"  # the one definition of "latest complete revision"
    for column in SPEND_COLUMNS[1:]:
        assert re.search(rf"\b{column}\b", spend.tail), column


def test_the_page_sums_exactly_and_breaks_spend_down_by_team_model_and_user() -> None:
    page = build_page(ROWS, [], RULES, [], now=NOW, window_minutes=60, charts=False)
    assert (page.today_micros, page.month_micros) == (700_003, 42_950_003)
    assert (page.today, page.month) == ("$0.70", "$42.95")
    assert page.estimated_percent == "0.7%" and page.unpriced_tokens == 500 and page.unpriced_percent == "11.1%"
    by = {breakdown.dimension: breakdown.rows for breakdown in page.breakdowns}
    assert [(name, today, month) for name, today, month, *_ in by["subscription (team)"]] == [
        ("team-a", "$0.60", "$40.85"), ("(unused provisioned capacity)", "$0.00", "$2.00"),
        ("team-b", "$0.10", "$0.10"),
    ]
    assert [name for name, *_ in by["model"]] == ["gpt-5.6-sol", "gpt-5.6-terra", "gpt-5.6-luna"]  # unpriced: no cost
    assert [name for name, *_ in by["user"]] == ["alice", "(no user id)", HOSTILE]


def test_budgets_burn_down_with_the_alert_rules_forecast() -> None:
    page = build_page(ROWS, [], RULES, [], now=NOW, window_minutes=60, charts=False)
    budgets = {(budget.rule, budget.scope): budget for budget in page.budgets}
    daily = budgets["daily", "all traffic"]
    # $0.700003 by noon: the rate so far ends the day at $1.400006, over the $1 budget.
    assert (daily.spent, daily.percent, daily.forecast, daily.status) == ("$0.70", "70.0%", "$1.40", "forecast over")
    team_a = budgets["team-a-month", "subscription team-a"]
    assert (team_a.spent, team_a.status) == ("$40.85", "ok")
    assert team_a.forecast == display_money(Decimal("40.850001") * 30 / Decimal("26.5"), "USD")  # $46.25
    # Each subscription on its own, the largest first; unused PTU capacity is no subscription (as in the alerts).
    per_team = [(budget.scope, budget.status) for budget in page.budgets if budget.rule == "per-team"]
    assert per_team == [("subscription team-a", "ok"), ("subscription team-b", "ok")]
    early = build_page(ROWS[:2], [], RULES, [], now=NOW.replace(hour=1), window_minutes=60, charts=False)
    assert next(budget.forecast for budget in early.budgets if budget.rule == "daily") == ""  # under 10% of the day


def test_the_page_escapes_client_values_and_shows_the_alert_history() -> None:
    sent = AlertRecord("daily|", "daily", "", open=True, notified_period="2026-11-27", notified_level="100%",
                       sent_at=NOW - timedelta(minutes=5))  # fmt: skip
    hostile = AlertRecord(f"u|{HOSTILE}", "per-user", HOSTILE, pending_kind="fired", pending_level="warning")
    page = build_page(ROWS, [("dep-x", "mystery", "team-b", 500, 1, NOW)], RULES, [hostile, sent], now=NOW,
                      window_minutes=60)  # fmt: skip
    html = render_html(page)
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<img ") == 2 + 4  # the two trend charts and the four budgets' burn-downs
    history = html[html.index('id="alert-history"') :]
    assert history.index("daily") < history.index("per-user")  # the latest sent first
    assert "2026-11-27 100%" in history and "2026-11-27 11:55 UTC" in history and "fired warning" in history
    assert '<td>dep-x</td><td>mystery</td><td>team-b</td><td class="num">500</td>' in html


# -- the whole stack, as `make run` starts it ---------------------------------------------------------------------


def _truth(stack: Stack, client: LogsQueryClient) -> tuple[int, int]:
    """(today, month) of TokenCostSummary_CL's latest complete revisions, summed here from its rows, in micro-units."""
    from shared.logs.kql import load_query
    from shared.windows import start_of_day, start_of_month

    now = datetime.now(UTC)
    start = start_of_month(now)
    query = load_query("cost-summary-latest.kql", {"start_time": start, "end_time": now + timedelta(days=1)})
    timespan = (start - timedelta(days=1), now + timedelta(days=1))
    table = client.query_workspace(stack.info.monitor.workspace_id, query, timespan=timespan).tables[0]
    columns = list(table.columns)
    today = month = 0
    for values in table.rows:
        record = dict(zip(columns, values, strict=True))
        if record["Currency"] != "USD" or record["Unpriced"]:
            continue
        micros = to_micros(Decimal(str(record["TotalCost"])))
        month += micros
        today += micros if record["WindowStart"] >= start_of_day(now) else 0
    return today, month


def _chromium(chromium: str, url: str, *args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--window-size=1400,2200", *args, url],
            check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    return result.stdout


@pytest.mark.slow
def test_make_run_serves_the_dashboard_with_the_traffic_spend_to_the_cent(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    chromium = find_chromium()
    if chromium is None:
        message = "CHROMIUM IS NOT INSTALLED: the dashboard check did NOT run (apt-get install -y chromium)"
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)
    data_dir = tmp_path_factory.mktemp("dash-stack")
    # As `make run` (python -m standins.stack): the host on its schedules, the dashboard beside it.
    with running_stack(data_dir, with_host=True, dashboard=True) as stack:
        url = dashboard_url(stack)
        client = logs_client(stack, monkeypatch)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), url
        started, shown = time.monotonic(), ""
        while time.monotonic() - started < 150:
            before = _truth(stack, client)
            dom = _chromium(chromium, url, "--dump-dom")
            after = _truth(stack, client)
            today = re.search(r'id="spend-today" data-micros="(\d+)">([^<]+)<', dom)
            month = re.search(r'id="spend-month" data-micros="(\d+)">([^<]+)<', dom)
            assert today and month, dom[:2000]
            shown = f"today {today[2]} ({today[1]} micro-units), month {month[2]} ({month[1]}); truth {after}"
            if before == after and after[1] > 0:  # no costs run landed in between, and the traffic has a cost
                break
            time.sleep(5)
        else:
            pytest.fail(f"no synthetic spend on the dashboard within 150 s: {shown}")
        print(f"dashboard after {time.monotonic() - started:.0f} s: {shown}")
        assert (int(today[1]), int(month[1])) == after  # to the micro-unit
        cents = [display_money(round_money(Decimal(micros).scaleb(-6), "USD"), "USD") for micros in after]
        assert [today[2], month[2]] == cents  # to the cent, as people read it
        assert 'id="trend-chart" src="data:image/png;base64,' in dom and "demo-daily-budget" in dom
        screenshot = data_dir / "dashboard.png"
        _chromium(chromium, url, f"--screenshot={screenshot}")
        assert screenshot.stat().st_size > 30_000  # a rendered page with charts, not a blank one
        print(f"dashboard screenshot: {screenshot}")
