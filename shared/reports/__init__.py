"""Chargeback reports: each ended week or month's cost per team, user, model and deployment type, mailed per recipient
group of the rules file.

Inside the costs timer, after the alert rules (shared/timers.py): plan.py reads the rules file's `reports` section and
knows the periods; figures.py reads the period and the one before it from the cost summaries (latest complete
revision, shared/logs/kql/report-cost-by-caller.kql) and the bill check's comparisons
(bill-reconciliation-latest.kql) and works out the breakdowns, changes, movers and shares; render.py lays a report out
as an email (HTML through shared/email's templates, text, a CSV attachment); run.py sends it once per period, group and
status (provisional, then final) with the alert state's claims (shared/alerts/state.py) and transports (shared/email/).
May import: shared.alerts.rules, shared.alerts.run, shared.alerts.state, shared.billing.run, shared.config,
shared.email, shared.errors, shared.json_input, shared.logs, shared.money, shared.windows, shared.timing.
"""
