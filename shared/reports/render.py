"""A chargeback report laid out: subject, text and HTML (shared/email's templates, autoescaped) and its CSV.

What the report says is in figures.py; this module only words and lays it out. Amounts are shown rounded to the
currency's minor unit (shared/money.display_money); the CSV carries them exactly, to the micro-unit, so the
attachment adds up to the period's windows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.email.render import Digest, render_page
from shared.money import display_money, from_micros
from shared.reports.figures import DIMENSIONS, Line, ReportFigures

CSV_COLUMNS = (
    "PeriodStart", "PeriodEnd", "Status", "SubscriptionId", "UserId", "Model", "DeploymentType", "Currency", "Cost",
    "PreviousCost", "Change", "EstimatedCost", "TotalTokens", "UnpricedTokens", "Requests",
)  # fmt: skip
_HEADINGS = ("", "Cost", "Previous", "Change", "Share")


@dataclass(frozen=True)
class Section:
    title: str
    headings: tuple[str, ...]
    rows: list[tuple[str, ...]]


def subject_of(figures: ReportFigures) -> str:
    period = figures.period
    previous = period.previous().key
    totals = ", ".join(
        f"{display_money(from_micros(line.amounts.cost_micros), line.currency)}, {_change_text(line)} vs {previous}"
        for line in figures.totals()
        if line.currency
    )
    prefix = "[PROVISIONAL] " if figures.status == "provisional" else ""
    return f"{prefix}AI gateway chargeback, {period.kind} {period.key}: {totals or 'no priced spend'}"


def attachment_name(figures: ReportFigures) -> str:
    return f"chargeback-{figures.period.kind}-{figures.period.key}-{figures.status}.csv"


def render_report(
    figures: ReportFigures, *, top_movers: int, generated_at: datetime, rules_file: str
) -> tuple[Digest, bytes]:
    """The email's parts (no inline images) and the CSV attachment."""
    period, previous = figures.period, figures.period.previous()
    summary = _summary(figures, previous.key)
    sections = [
        Section(f"Cost by {title[0].lower()}{title[1:]}", (title, *_HEADINGS[1:]),
                _rows(figures.breakdown(member), figures))
        for title, member in DIMENSIONS
    ]  # fmt: skip
    movers = figures.movers(top_movers)
    sections.insert(1, Section(
        f"Top movers vs {previous.key}", ("Team / user / model", "Cost", "Previous", "Change", "Share"),
        _rows(movers, figures),
    ))  # fmt: skip
    provisional = (
        f"{period.label} has windows that are not final yet (late metrics can still change them); the final report "
        "follows once every window is final."
        if figures.status == "provisional"
        else ""
    )
    title = f"Chargeback {period.label}" + (" (provisional)" if provisional else "")
    generated = f"{generated_at:%Y-%m-%d %H:%M} UTC"
    html = render_page(
        "chargeback_report.html", title=title, period=f"{period.kind} {period.key}", generated_at=generated,
        provisional=provisional, summary=summary, sections=sections, attachment=attachment_name(figures),
        rules_file=rules_file,
    )  # fmt: skip
    text_parts = [title, *([f"PROVISIONAL: {provisional}"] if provisional else []), "\n".join(summary)]
    for section in sections:
        lines = [section.title + ":"] + [
            "  " + "  ".join(cell for cell in row) for row in section.rows or [("(none)",)]
        ]
        text_parts.append("\n".join(lines))
    text_parts.append(f"Every caller's figures: {attachment_name(figures)}. Reports and recipients: {rules_file}.")
    return Digest(subject_of(figures), "\n\n".join(text_parts) + "\n", html, ()), report_csv(figures)


def report_csv(figures: ReportFigures) -> bytes:
    """One row per caller of the period or the one before (RFC 4180, CRLF, UTF-8), amounts to the micro-unit."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    period = figures.period
    for key, amounts in sorted(figures.callers.items()):
        writer.writerow([
            f"{period.start:%Y-%m-%dT%H:%M:%SZ}", f"{period.end:%Y-%m-%dT%H:%M:%SZ}", figures.status,
            key.subscription, key.user, key.model, key.deployment_type, key.currency,
            f"{from_micros(amounts.cost_micros):f}", f"{from_micros(amounts.previous_micros):f}",
            f"{from_micros(amounts.change_micros):f}", f"{from_micros(amounts.estimated_micros):f}",
            amounts.tokens, amounts.unpriced_tokens, amounts.requests,
        ])  # fmt: skip
    return buffer.getvalue().encode("utf-8")


def _summary(figures: ReportFigures, previous_key: str) -> list[str]:
    sentences = []
    for line in figures.totals():
        if not line.currency:
            continue
        amounts = line.amounts
        estimated = figures.estimated_share(line.currency)
        sentences.append(
            f"Total {display_money(from_micros(amounts.cost_micros), line.currency)}: {_change_text(line)} vs "
            f"{previous_key} ({display_money(from_micros(amounts.previous_micros), line.currency)}); "
            f"{estimated if estimated is not None else 0}% of it rests on APIM's estimates (streamed calls)."
        )
    if not sentences:
        sentences.append("No priced spend in the period.")
    unpriced = figures.unpriced_share()
    tokens = sum(amounts.unpriced_tokens for amounts in figures.callers.values())
    sentences.append(
        f"Unpriced tokens: {tokens:,} ({unpriced if unpriced is not None else 0}% of the period's tokens), in no cost: "
        "their price is unknown, never taken as 0."
    )
    sentences.append(_bill_sentence(figures))
    sentences.append(f"{figures.windows} cost windows with usage; status {figures.status}.")
    return sentences


def _bill_sentence(figures: ReportFigures) -> str:
    bill = figures.bill
    if bill.problem:
        return f"Bill check: not available ({bill.problem})."
    amounts = "; ".join(
        f"billed {display_money(from_micros(bill.billed_micros_by_currency.get(currency, 0)), currency)} vs ours "
        f"{display_money(from_micros(micros), currency)}"
        for currency, micros in sorted(bill.our_micros_by_currency.items())
    )
    return (
        f"Bill check: {bill.compared} of {bill.days} days compared with Cost Management"
        + (f" ({amounts})" if amounts else "")
        + f", {bill.pending} pending, {bill.not_settled} not settled or not checked yet."
    )


def _rows(lines: Sequence[Line], figures: ReportFigures) -> list[tuple[str, ...]]:
    totals = {line.currency: line.amounts.cost_micros for line in figures.totals()}
    rows: list[tuple[str, ...]] = []
    for line in lines:
        amounts = line.amounts
        if not line.currency:  # unpriced usage: tokens only
            rows.append((line.member, f"unpriced: {amounts.unpriced_tokens:,} tokens", "", "", ""))
            continue
        total = totals.get(line.currency, 0)
        share = f"{round(amounts.cost_micros * 100 / total, 1)}%" if total else ""
        rows.append((
            line.member, display_money(from_micros(amounts.cost_micros), line.currency),
            display_money(from_micros(amounts.previous_micros), line.currency), _change_text(line), share,
        ))  # fmt: skip
    return rows


def _change_text(line: Line) -> str:
    """"+$1.20 (+5.0%)", "-$0.30 (-100.0%)", "+$2.00 (new)" or "no change"."""
    amounts = line.amounts
    change = amounts.change_micros
    if not change:
        return "no change"
    signed = ("+" if change > 0 else "-") + display_money(from_micros(abs(change)), line.currency)
    percent = amounts.change_percent
    return f"{signed} ({percent:+}%)" if percent is not None else f"{signed} (new)"
