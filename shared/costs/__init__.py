"""Costs: token metrics per window → priced summaries in Log Analytics.

Queries the gateway's token metrics (query.py, through logs/), prices them with the versioned price
table (price_table.py read by price_files.py, pricing.py, frame.py; provisioned deployments' PTU-hours shared
by their callers: ptu.py; deployment -> model from the accounts through ARM or the deployments.json override:
deployments.py), uploads one summary revision per window and records which windows are final and what they
were priced with (progress.py); run.py is the entry, recompute.py the steps it shares with reprice.py (closed
windows repriced on purpose, for `python -m tools.reprice`), clients.py the services both talk to. What it
hands on is in outputs.py (CostRunSummary, SubscriptionSpend), the one module of costs/ that alerts/ may
import. catalog.py is the price catalog (rows by deployment type and token kind) that catalog_retail.py and
catalog_litellm.py import from public sources for `python -m tools.prices`; the shipped price table is one.
May import: shared.azure_clients, shared.config, shared.errors, shared.json_input, shared.money, shared.timing,
shared.windows, shared.logs. Never traffic/, alerts/ or email/.
"""
