"""The bypass check: the model accounts' own token meters against what the gateway metered.

Every call an Azure OpenAI / Foundry account serves is in its platform metrics (ProcessedPromptTokens,
GeneratedTokens per ModelDeploymentName), whoever sent it; APIM's token metrics see only the calls that
went through the gateway. After each costs run, read.py reads the accounts' metrics for the run's final
windows (Azure Monitor Metrics - List through ARM), run.py sets them beside the gateway's tokens the costs
run already summed per window and deployment (no second query) and hands on a BypassReport
(outputs.py, stdlib only) that the alert rules of kind `bypass` judge. A read that is throttled or fails
is retried within a time budget and otherwise left pending: never compared, never silently skipped. Each
comparison, pending ones included, is kept in MeterComparison_CL (table.py), which the workbook shows.
May import: shared.azure_clients, shared.azure_retry, shared.config, shared.errors, shared.logs, shared.windows,
and of costs/ only shared.costs.outputs. Never traffic/, alerts/ or email/.
"""
