"""Costs: token metrics per window → priced summaries in Log Analytics.

Queries the gateway's token metrics (logs/), prices them with the versioned price table, uploads
one summary revision per window and records which windows are final (run.py is the entry).
Its outputs are in outputs.py (CostRunSummary, SubscriptionSpend): the one module of costs/ that
alerts/ may import.
May import: shared.config, shared.errors, shared.money, shared.windows, shared.logs. Never traffic/
or alerts/.
"""
