"""Local stand-ins for the Azure services the function app talks to.

Each stand-in is a real server bound to loopback only, speaking the protocol of the service it
replaces, so the app's unmodified SDK clients reach it by settings alone. Not deployed
(excluded in .funcignore).
"""
