"""Alerts: rules evaluated on the cost summaries, state kept per rule and scope, emails sent.

Reads costs' outputs (shared.costs.outputs: CostRunSummary, SubscriptionSpend) and the summary
tables, evaluates the rules file, moves each alert through its states (fire, escalate, resolve,
once per period) and hands the notifications to email/ (run.py is the entry).
May import: shared.config, shared.errors, shared.money, shared.windows, shared.logs, shared.email,
and shared.costs.outputs (nothing else of costs/). Never traffic/.
"""
