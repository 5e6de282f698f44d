"""Email: alert digests rendered to HTML and text (templates/, chart PNG) and delivered.

Delivery by SMTP or Azure Communication Services behind one Transport protocol.
May import: shared.errors and the alert findings it renders. Never costs/ or traffic/.
"""
