"""Email: alert digests rendered to HTML and text (Jinja2 templates/, autoescaped; chart PNG) and delivered.

Delivery by SMTP or Azure Communication Services behind one Transport protocol; InMemoryTransport
is its in-library twin for tests and benchmarks.
May import: shared.errors and the alert findings it renders. Never costs/ or traffic/.
"""
