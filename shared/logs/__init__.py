"""Azure Monitor Logs: the KQL files, their include expansion and parameter binder, the one way to ask
a query and judge its answer (query.py), the runner that splits a range into parts (parts.py), row
encoding and the chunked Logs Ingestion upload.

Knows Log Analytics, not costs or alerts.
May import: shared.errors, shared.windows. Never traffic/, costs/, alerts/ or email/.
"""
