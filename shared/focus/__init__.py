"""The FOCUS export: each final UTC day's cost summaries as FOCUS rows, one CSV a day in Blob storage.

After the bill check, the costs timer reads the latest complete revision of TokenCostSummary_CL per UTC day
(shared/logs/kql/focus-cost-by-day.kql), lays each day's rows out in FOCUS 1.2 columns (columns.py: the
FinOps Open Cost and Usage Specification, with our own columns prefixed x_) and writes the day to
FOCUS_EXPORT_CONTAINER (store.py: azure-storage-blob, Azurite locally) once every window of the day is final
(export.py is the entry). A day is written again on every run while it is among the last FOCUS_EXPORT_DAYS final
days: the same content leaves the blob as it is, other content (a restated day) overwrites it and is logged.
May import: shared.azure_clients, shared.config, shared.errors, shared.logs, shared.money, shared.windows, and of
costs/ only shared.costs.deployments (each deployment's account and model version). Never traffic/, alerts/ or
email/.
"""
