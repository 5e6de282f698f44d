"""Email: a digest laid out and delivered. render.py turns a DigestView (views.py: plain strings,
numbers and chart bars) into HTML and text (Jinja2 templates/, autoescaped) with chart.py's inline
PNGs, and builds the message; SMTP or Azure Communication Services deliver it behind one Transport
protocol (delivery.py, acs.py); InMemoryTransport is its in-library twin for tests and benchmarks.
What a digest says is decided in shared/alerts/digest.py: email/ knows no findings or rules.

May import: shared.errors, shared.money (amounts on charts). Never alerts/, costs/, traffic/ or logs/ (the end
of the flow; alerts/ calls it).
"""
