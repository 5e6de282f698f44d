"""Alerts: rules evaluated on the cost summaries, state kept per rule and scope, emails sent.

Reads the rules file (rules.py), what the costs run, the bypass check (shared/meters/) and the bill check
(shared/billing/) handed on
and the summary tables (data.py), evaluates each rule (evaluate.py → findings.py), moves each alert
through its states: fire, escalate, resolve, once per period (transitions.py, state.py), and decides
what each digest email says (digest.py: plain views that email/ lays out and sends, and channels/ posts to
Teams, Slack and webhooks); run.py is the entry.
May import: shared.config, shared.errors, shared.json_input, shared.money, shared.timing, shared.windows,
shared.logs, shared.email, shared.channels, of costs/ only shared.costs.outputs, of meters/ only
shared.meters.outputs and of billing/ only shared.billing.outputs.
Never traffic/.
"""
