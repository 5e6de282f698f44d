"""The two timers' work, one entry each: function_app.py calls these and nothing else.

The one module that knows the costs timer runs costs, then the bypass check on the windows it
made final (the model accounts' own meters, shared/meters/), then the bill check on the settled
days (Cost Management, shared/billing/: it reads Cost Management once a day), then the FOCUS export of the final
days (shared/focus/: one CSV a day in Blob storage, when FOCUS_EXPORT_CONTAINER is set), then the alert rules
on what they produced, then the chargeback reports of ended periods (shared/reports/: even when an alert email
failed), so costs/ never imports alerts/ and traffic/ and costs/ never meet. Every value comes
from the settings parsed at start (shared/config.py); no module below reads the environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.config import AlertSettings, Settings
    from shared.costs.outputs import CostRunSummary
    from shared.meters.outputs import Allowance
    from shared.traffic.results import TrafficRunSummary


def traffic_timer(settings: Settings) -> TrafficRunSummary:
    """One traffic run: synthetic calls through the gateway, their ground truth uploaded."""
    from shared.traffic.run import run_traffic

    return run_traffic(settings.traffic, settings.azure.logs_ingestion_client)


def costs_timer(settings: Settings) -> CostRunSummary:
    """One costs run, the bypass check on its final windows, the bill check, the FOCUS export, the alert rules on
    what they produced, then the chargeback reports that are due."""
    from shared.costs.run import CostUploadError, run_costs

    allowance = bypass_allowance(settings.alerts)
    try:
        summary = run_costs(settings.costs)
    except CostUploadError as error:
        # Windows that did upload still count: check, export, alert and report on them, then fail the run loudly.
        _after_costs(settings, error.summary, allowance)
        raise
    _after_costs(settings, summary, allowance)
    return summary


def _after_costs(settings: Settings, summary: CostRunSummary, allowance: Allowance | None) -> None:
    from shared.alerts.run import evaluate_and_notify
    from shared.billing.run import check_bill
    from shared.focus.export import export_focus
    from shared.meters.run import check_bypass
    from shared.reports.run import send_reports

    bypass = check_bypass(settings.meters, summary, allowance=allowance)
    bill = check_bill(settings.bill)
    export_focus(settings.focus, summary.final_through)
    try:
        evaluate_and_notify(settings.alerts, summary, bypass, bill)
    finally:
        send_reports(settings.alerts, summary.final_through)


def bypass_allowance(settings: AlertSettings) -> Allowance | None:
    """The strictest `bypass` rule's allowance, which the bypass check writes beside each comparison; None without
    such a rule, or when the rules file cannot be read (the alert run then fails on it, naming file and field)."""
    from shared.alerts.rules import load_rules
    from shared.errors import InputError
    from shared.meters.outputs import Allowance

    try:
        rules = load_rules(settings.rules_file).rules
    except InputError:
        return None
    return Allowance.strictest(
        [Allowance(rule.tolerance_percent, rule.stream_tolerance_percent) for rule in rules if rule.kind == "bypass"]
    )
