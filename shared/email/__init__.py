"""Email: alert digests rendered to HTML and text (Jinja2 templates/, autoescaped; chart.py's PNG)
and delivered by SMTP or Azure Communication Services behind one Transport protocol
(delivery.py, acs.py); InMemoryTransport is its in-library twin for tests and benchmarks.

May import: shared.errors, and shared.alerts.findings (the findings it renders; alerts/ calls email/
only from alerts/run.py, so the two never import each other at module load). Never costs/ or traffic/.
"""
