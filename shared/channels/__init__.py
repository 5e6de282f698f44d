"""Alert channels beside email: Microsoft Teams (Workflows webhook, Adaptive Card), Slack (incoming webhook,
Block Kit) and a generic JSON webhook signed per Standard Webhooks (HMAC-SHA256).

A recipient group in the rules file names its channels (shared/alerts/rules.py); shared/config.py reads the
app settings they name (the URLs are secrets: Key Vault references in Azure); shared/alerts/run.py hands each
channel the same DigestView as the email (shared/email/views.py, built by shared/alerts/digest.py), so a card
carries the email's figures. payloads.py lays a view out for each receiver, post.py delivers it (retries with
backoff on 429 / 5xx, Retry-After honoured), transports.py is the Channel contract, the three webhook channels
and their in-memory twin for tests. Stdlib only.

May import: shared.errors, shared.azure_retry (Retry-After), shared.email (the views it lays out, the TLS
context). Never alerts/, costs/, traffic/ or logs/ (like email/, the end of the flow; alerts/ calls it).
"""
