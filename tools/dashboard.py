"""The local cost dashboard: the Azure workbook's own panels run against the monitor, as one HTML page.

    python -m tools.dashboard --settings .local/local.settings.json [--port 7807]   # serve on 127.0.0.1
    python -m tools.dashboard --settings .local/local.settings.json --out page.html  # write the page once

`make run` starts it beside the app (standins/stack.py DASHBOARD) and prints its URL. Every page load runs
the workbook's panels (tools/build_workbook.py PANELS: the shared/logs/kql files with their panel tails,
bound to this month instead of the workbook's time range) through LogsQueryClient with the app's settings
and identity, so the page shows what the workbook shows in Azure, from the same KQL: spend today and this
month by subscription (team), model and user, the trend, each budget of the alert rules file
(ALERT_RULES_FILE) burning down with its forecast (the alert rule's own: the rate so far to the period's
end), the estimated and unpriced shares, and the alert history (the alert state table). Money is summed
as integer micro-units (the panel's CostMicros), so the page matches TokenCostSummary_CL to the micro-unit
and shows it to the cent. The app itself serves nothing: this is a tool beside it (not deployed).
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import sys
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.config import AlertSettings, load_settings
from shared.email.chart import FORECAST, LATEST, Line, bar_chart_png, line_chart_png
from shared.errors import InputError
from shared.logs.kql import kql_literal
from shared.logs.query import query_table
from shared.money import display_money, from_micros
from shared.windows import start_of_day, start_of_month
from tools.build_workbook import QUERY_SCOPE_MS, panel, panel_query

if TYPE_CHECKING:
    import jinja2
    from azure.monitor.query import LogsQueryClient

    from shared.alerts.rules import Rule, RuleSet
    from shared.alerts.state import AlertRecord

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "tools" / "dashboard.html"
DEFAULT_PORT = 7807
REFRESH_SECONDS = 30
TOP_ROWS = 10  # rows per "by subscription / model / user" table
BURN_DOWN_CHARTS = 6  # budget charts drawn (the most spent first); every budget is in the table
HISTORY_ROWS = 50
# The panels the page is made of: the workbook's, by name, with their columns (checked on every answer).
SPEND = "spend-by-window"
SPEND_COLUMNS = ("WindowStart", "SubscriptionId", "Model", "UserId", "ApiId", "Currency", "CostMicros",
                 "EstimatedCostMicros", "TotalTokens", "UnpricedTokens", "Requests")  # fmt: skip
UNPRICED = "unpriced-usage"
UNPRICED_COLUMNS = ("Deployment", "Model", "SubscriptionId", "TotalTokens", "Requests", "LastWindow")
SCOPE_COLUMN = {"subscription": "SubscriptionId", "user": "UserId", "model": "Model", "api": "ApiId"}
NO_SUBSCRIPTION = "(unused provisioned capacity)"  # ptu_unused rows: in every total, of no subscription

log = logging.getLogger("dashboard")


@dataclass(frozen=True)
class SpendRow:
    window_start: datetime
    subscription: str
    model: str
    user: str
    api: str
    currency: str  # "" for unpriced usage
    cost_micros: int
    estimated_micros: int
    tokens: int
    unpriced_tokens: int
    requests: int


@dataclass(frozen=True)
class Breakdown:
    """One "by <dimension>" table: name, today, month (display text and micro-units), the month's share."""

    dimension: str
    rows: tuple[tuple[str, str, str, int, int, str], ...]


@dataclass(frozen=True)
class Budget:
    rule: str
    scope: str
    period: str  # "day" or "month"
    spent: str
    amount: str
    percent: str
    forecast: str  # period end at the rate so far; "" before the rule would forecast
    status: str  # "over", "forecast over", "ok"
    spent_micros: int
    chart: str = ""  # data: URI of the burn-down PNG, "" when not drawn


@dataclass(frozen=True)
class Page:
    generated_at: str
    currency: str
    today: str
    month: str
    today_micros: int
    month_micros: int
    estimated_percent: str
    unpriced_tokens: int
    unpriced_percent: str
    windows: int
    breakdowns: tuple[Breakdown, ...]
    trend_chart: str
    days_chart: str
    budgets: tuple[Budget, ...]
    unpriced: tuple[tuple[str, str, str, int, int, str], ...]
    history: tuple[tuple[str, str, str, str, str, str], ...]
    history_error: str
    rules_file: str
    panels: tuple[str, ...] = field(default=(SPEND, UNPRICED))


def month_range(now: datetime) -> tuple[datetime, datetime]:
    """This UTC month's windows: [month start, now + a day) (the open window, and no late edge cut off)."""
    return start_of_month(now), now + timedelta(days=1)


def run_panel(
    client: LogsQueryClient, settings: AlertSettings, name: str, columns: Sequence[str], start: datetime, end: datetime
) -> list[Any]:
    """The workbook panel `name`, its time parameters bound to [start, end), asked as the app asks."""
    bindings = {"start_time": kql_literal(start), "end_time": kql_literal(end)}
    query = panel_query(panel(name), bindings=bindings)
    scope = timedelta(milliseconds=QUERY_SCOPE_MS)  # as the workbook: summaries are uploaded after their window
    return query_table(client, settings.workspace_id, f"dashboard panel {name}", query, (end - scope, end), columns)


def spend_rows(raw: Iterable[Sequence[Any]]) -> list[SpendRow]:
    return [
        SpendRow(_utc(v[0]), *(str(x or "") for x in v[1:6]), *(int(x or 0) for x in v[6:11]))  # type: ignore[arg-type]
        for v in map(list, raw)  # the SDK's rows index by position or column name, but do not slice
    ]


def build_page(
    rows: Sequence[SpendRow],
    unpriced: Sequence[Sequence[Any]],
    rules: RuleSet,
    history: Sequence[AlertRecord] | None,
    *,
    now: datetime,
    window_minutes: int,
    history_error: str = "",
    charts: bool = True,
) -> Page:
    currency = rules.currency
    day_start, month_start = start_of_day(now), start_of_month(now)
    priced = [row for row in rows if row.currency == currency]

    def money(micros: int) -> str:
        return display_money(from_micros(micros), currency)

    today_micros = sum(row.cost_micros for row in priced if row.window_start >= day_start)
    month_micros = sum(row.cost_micros for row in priced if row.window_start >= month_start)
    estimated = sum(row.estimated_micros for row in priced if row.window_start >= month_start)
    tokens = sum(row.tokens for row in rows)
    unpriced_tokens = sum(row.unpriced_tokens for row in rows)
    breakdowns = []
    for dimension, key in (("subscription (team)", _subscription), ("model", _model), ("user", _user)):
        today: dict[str, int] = defaultdict(int)
        month: dict[str, int] = defaultdict(int)
        for row in priced:
            month[key(row)] += row.cost_micros
            if row.window_start >= day_start:
                today[key(row)] += row.cost_micros
        ranked = sorted(month, key=lambda name: (-month[name], name))[:TOP_ROWS]

        def share(name: str, month: dict[str, int] = month) -> str:
            return _percent(month[name], month_micros)

        shown = tuple(
            (name, money(today[name]), money(month[name]), today[name], month[name], share(name))
            for name in ranked
        )
        breakdowns.append(Breakdown(dimension, shown))
    return Page(
        generated_at=f"{now:%Y-%m-%d %H:%M:%S} UTC",
        currency=currency,
        today=money(today_micros),
        month=money(month_micros),
        today_micros=today_micros,
        month_micros=month_micros,
        estimated_percent=_percent(estimated, month_micros),
        unpriced_tokens=unpriced_tokens,
        unpriced_percent=_percent(unpriced_tokens, tokens),
        windows=len({row.window_start for row in rows}),
        breakdowns=tuple(breakdowns),
        trend_chart=_trend_chart(priced, now, window_minutes, currency) if charts else "",
        days_chart=_days_chart(priced, now, currency) if charts else "",
        budgets=tuple(_budgets(rules, priced, now, window_minutes, charts=charts)),
        unpriced=tuple(
            (str(row[0]), str(row[1]), str(row[2]), int(row[3] or 0), int(row[4] or 0), _when(row[5]))
            for row in unpriced
        ),
        history=tuple(_history(history or ())),
        history_error=history_error,
        rules_file=rules.source,
    )


def _subscription(row: SpendRow) -> str:
    return row.subscription or NO_SUBSCRIPTION


def _model(row: SpendRow) -> str:
    return row.model


def _user(row: SpendRow) -> str:
    return row.user or "(no user id)"


def _percent(part: int, whole: int) -> str:
    return "0%" if whole == 0 else f"{Decimal(part) * 100 / Decimal(whole):.1f}%"


def _utc(value: Any) -> datetime:
    return value.astimezone(UTC) if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _when(value: Any) -> str:
    return f"{_utc(value):%Y-%m-%d %H:%M} UTC" if value else ""


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _trend_chart(rows: Sequence[SpendRow], now: datetime, window_minutes: int, currency: str) -> str:
    """Cost per window over the last 24 windows, the open one highlighted."""
    step = timedelta(minutes=window_minutes)
    last = datetime.fromtimestamp(now.timestamp() // step.total_seconds() * step.total_seconds(), UTC)
    starts = [last - step * index for index in range(23, -1, -1)]
    sums: dict[datetime, int] = defaultdict(int)
    for row in rows:
        sums[row.window_start] += row.cost_micros
    return _png_uri(bar_chart_png(
        [f"{start:%H:%M}" for start in starts], [from_micros(sums[start]) for start in starts], unit=currency,
        x_label=f"{window_minutes}-minute window (UTC)",
    ))  # fmt: skip


def _days_chart(rows: Sequence[SpendRow], now: datetime, currency: str) -> str:
    first = start_of_month(now)
    days = [first + timedelta(days=index) for index in range((start_of_day(now) - first).days + 1)]
    sums: dict[datetime, int] = defaultdict(int)
    for row in rows:
        sums[start_of_day(row.window_start)] += row.cost_micros
    return _png_uri(bar_chart_png(
        [f"{day:%m-%d}" for day in days], [from_micros(sums[day]) for day in days], unit=currency, x_label="day (UTC)",
    ))  # fmt: skip


def _budgets(
    rules: RuleSet, rows: Sequence[SpendRow], now: datetime, window_minutes: int, *, charts: bool
) -> list[Budget]:
    found: list[tuple[Rule, str, int, datetime, timedelta, list[SpendRow]]] = []
    for rule in rules.rules:
        if rule.kind != "budget" or rule.amount is None:
            continue
        start = start_of_day(now) if rule.period == "day" else start_of_month(now)
        length = timedelta(days=1) if rule.period == "day" else _month_length(start)
        in_period = [row for row in rows if row.window_start >= start]
        dimension = rule.scope.dimension
        if dimension is None:
            members: dict[str, list[SpendRow]] = {"all traffic": in_period}
        else:
            column = SCOPE_COLUMN[dimension]
            members = defaultdict(list)
            for row in in_period:
                value = getattr(row, _FIELD[column])
                if rule.scope.value is None and not value:
                    continue  # unused PTU capacity is no subscription of an each: scope (shared/alerts/evaluate.py)
                if rule.scope.value is None or value == rule.scope.value:
                    members[f"{dimension} {value}"].append(row)
            if rule.scope.value is not None:
                members.setdefault(f"{dimension} {rule.scope.value}", [])
        for scope, member_rows in members.items():
            found.append((rule, scope, sum(row.cost_micros for row in member_rows), start, length, member_rows))
    found.sort(key=lambda item: (-item[2], item[0].name, item[1]))
    budgets = []
    for index, (rule, scope, micros, start, length, member_rows) in enumerate(found):
        assert rule.amount is not None
        spent = from_micros(micros)
        elapsed = (now - start).total_seconds()
        # The alert rule's own forecast (shared/alerts/evaluate.py _budget_finding): the rate so far to the period's
        # end, once forecast_min_elapsed_percent of the period has passed.
        elapsed_percent = Decimal(elapsed) * 100 / Decimal(length.total_seconds())
        due = elapsed > 0 and elapsed_percent >= rule.forecast_min_elapsed_percent
        projected = spent * Decimal(length.total_seconds()) / Decimal(elapsed) if due else None
        status = "over" if spent >= rule.amount else "forecast over" if projected and projected > rule.amount else "ok"
        chart = ""
        if charts and index < BURN_DOWN_CHARTS:
            chart = _burn_down_chart(rule, member_rows, start, length, now, window_minutes, projected, rules.currency)
        budgets.append(Budget(
            rule=rule.name, scope=scope, period=rule.period, spent=display_money(spent, rules.currency),
            amount=display_money(rule.amount, rules.currency), percent=_percent(micros, int(rule.amount * 1_000_000)),
            forecast="" if projected is None else display_money(projected, rules.currency), status=status,
            spent_micros=micros, chart=chart,
        ))  # fmt: skip
    return budgets


_FIELD = {"SubscriptionId": "subscription", "UserId": "user", "Model": "model", "ApiId": "api"}


def _month_length(month_start: datetime) -> timedelta:
    following = (month_start + timedelta(days=32)).replace(day=1)
    return following - month_start


def _burn_down_chart(
    rule: Rule,
    rows: Sequence[SpendRow],
    start: datetime,
    length: timedelta,
    now: datetime,
    window_minutes: int,
    projected: Decimal | None,
    currency: str,
) -> str:
    """Spend to date, cumulative per hour (a day's budget) or day (a month's), and the forecast on to the end."""
    step = timedelta(hours=1) if rule.period == "day" else timedelta(days=1)
    points = int(length / step)
    fmt = "%H:00" if rule.period == "day" else "%m-%d"
    labels = [f"{start + step * index:{fmt}}" for index in range(points)]
    per_step: dict[int, int] = defaultdict(int)
    for row in rows:
        per_step[int((row.window_start - start) / step)] += row.cost_micros
    current = min(int((now - start) / step), points - 1)
    spent: list[Decimal | None] = []
    running = 0
    for index in range(points):
        running += per_step.get(index, 0)
        spent.append(from_micros(running) if index <= current else None)
    lines = [Line("spent", tuple(spent), color=LATEST)]
    if projected is not None:
        so_far = spent[current] or Decimal(0)
        remaining = points - 1 - current
        forecast = [
            so_far + (projected - so_far) * (index - current) / remaining if remaining and index >= current else None
            for index in range(points)
        ]
        lines.append(Line("forecast", tuple(forecast), color=FORECAST, dashed=True))
    return _png_uri(line_chart_png(
        labels, lines, unit=currency, x_label="hour (UTC)" if rule.period == "day" else "day (UTC)",
        reference=rule.amount, reference_label="budget",
    ))  # fmt: skip


def _history(records: Iterable[AlertRecord]) -> list[tuple[str, str, str, str, str, str]]:
    """The alert state, the latest sent first: what was notified, for which period and level, and what waits."""
    rows = sorted(records, key=lambda record: record.sent_at or datetime.min.replace(tzinfo=UTC), reverse=True)
    return [
        (record.rule, record.member or "all traffic", "open" if record.open else "resolved",
         f"{record.notified_period} {record.notified_level}".strip(),
         _when(record.sent_at), f"{record.pending_kind} {record.pending_level}".strip())
        for record in rows[:HISTORY_ROWS]
    ]  # fmt: skip


@cache
def _template() -> jinja2.Template:
    import jinja2

    environment = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )  # user ids and subscription names come from clients: every value is escaped
    return environment.from_string(TEMPLATE.read_text(encoding="utf-8"))


def render_html(page: Page) -> str:
    return _template().render(page=page, refresh_seconds=REFRESH_SECONDS)


class Dashboard:
    """The page, built on request from the monitor and the alert state with the app's settings."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self._client: LogsQueryClient | None = None
        self._lock = threading.Lock()  # one page at a time: the queries are the same for every viewer

    def html(self, now: datetime | None = None) -> str:
        from shared.alerts.rules import load_rules

        settings = self.settings
        now = now or datetime.now(UTC)
        with self._lock:
            if self._client is None:
                self._client = settings.azure.logs_query_client(settings.query_endpoint)
            start, end = month_range(now)
            rows = spend_rows(run_panel(self._client, settings, SPEND, SPEND_COLUMNS, start, end))
            unpriced = run_panel(self._client, settings, UNPRICED, UNPRICED_COLUMNS, start, end)
            history, history_error = self._history()
            page = build_page(rows, unpriced, load_rules(settings.rules_file), history, now=now,
                              window_minutes=settings.window_minutes, history_error=history_error)  # fmt: skip
            return render_html(page)

    def _history(self) -> tuple[list[AlertRecord] | None, str]:
        from shared.alerts.state import TableAlertStateStore

        try:
            table = self.settings.azure.state_table(self.settings, "alert state")
            return list(TableAlertStateStore(table).load().values()), ""
        except Exception as error:  # the page still shows the costs; it says why the history is missing
            return None, f"alert state table {self.settings.state_table_name!r} not readable: {error}"


def serve(dashboard: Dashboard, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/", "/index.html"):
                self.send_error(404)
                return
            try:
                body, status = dashboard.html().encode("utf-8"), 200
            except Exception as error:  # shown, not hidden: e.g. the monitor is not up yet
                log.exception("dashboard page failed")
                body, status = f"dashboard failed: {error}\n".encode(), 503
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8" if status == 200 else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)  # loopback only
    print(f"READY http://127.0.0.1:{server.server_address[1]}/", flush=True)  # standins/processes.py READY_PREFIX
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.dashboard", description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--settings", type=Path, help="a local.settings.json whose Values fill what the environment does not set"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--out", type=Path, help="write the page to this file once instead of serving it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.settings is not None:
            from tools.reprice import _load_settings_file

            _load_settings_file(args.settings)
        settings = load_settings(os.environ if environ is None else environ).alerts
    except InputError as error:
        print(f"python -m tools.dashboard: {error}", file=sys.stderr)
        return 2
    dashboard = Dashboard(settings)
    if args.out is not None:
        args.out.write_text(dashboard.html(), encoding="utf-8")
        print(f"dashboard: {args.out}")
        return 0
    serve(dashboard, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
