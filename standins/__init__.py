"""Local stand-ins for the Azure services the function app talks to.

Each stand-in is a real server bound to loopback only, speaking the protocol of the service it
replaces, so the app's unmodified SDK clients reach it by settings alone. Not deployed
(excluded in .funcignore). `stack.py` starts them all from one table of services.

May import the standard library and third-party packages only: never `shared/` (the app under
test must reach the stand-ins by settings alone, and shared/ never imports standins/ either).
"""
