"""Bearer-token checks for the Azure Monitor stand-in's Entra-protected APIs.

The query and Logs Ingestion APIs require a token from the local managed-identity endpoint
(standins.identity), for an Azure Monitor audience, as Azure requires an Entra token for
those resources. The App Insights track API is keyed by instrumentation key instead.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

from aiohttp.typedefs import Middleware

from standins import bearer
from standins._server import LOOPBACK_HOSTS
from standins.bearer import ErrorBody
from standins.identity import TokenSigner

# What LogsIngestionClient asks for (fixed scope), what LogsQueryClient asks for by default,
# and the public-cloud Log Analytics alias. LogsQueryClient pointed at the stand-in asks for
# the stand-in's own origin, accepted below when it is a loopback address.
AZURE_MONITOR_AUDIENCES = frozenset(
    {"https://monitor.azure.com", "https://api.loganalytics.io", "https://api.loganalytics.azure.com"}
)


def audience_accepted(audience: str) -> bool:
    normalized = audience.rstrip("/")
    if normalized in AZURE_MONITOR_AUDIENCES:
        return True
    parsed = urlparse(normalized)
    return parsed.scheme == "https" and parsed.hostname in LOOPBACK_HOSTS and parsed.path == ""


def bearer_auth_middleware(signer: TokenSigner, protected: Callable[[str], ErrorBody | None]) -> Middleware:
    """Middleware refusing requests to protected paths without a valid Azure Monitor token (401)."""
    return bearer.bearer_auth_middleware(
        signer, protected, audience_ok=audience_accepted, service_name="Azure Monitor"
    )
