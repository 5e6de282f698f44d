"""Serves recorded Azure Retail Prices pages on 127.0.0.1, the way prices.azure.com pages them.

Page 1 is answered only for the expected `$filter` and `currencyCode` (anything else: HTTP 400, as
the API refuses a filter it cannot parse); page N>1 for the same query plus `$skip=100*(N-1)`, the
form of the real NextPageLink (https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices,
"API response", read 2026-11-30). Each page's NextPageLink is rewritten from prices.azure.com to
this server, so the importer follows it exactly as it would in Azure.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RECORDED_HOST = "https://prices.azure.com:443"
PAGE_SIZE = 100


@contextmanager
def serve_pages(pages: list[Path], expected_query: Mapping[str, str]) -> Iterator[tuple[str, list[str]]]:
    """(the endpoint URL, the request targets seen) while the server runs."""
    seen: list[str] = []
    recorded = [page.read_text(encoding="utf-8") for page in pages]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            skip = int(query.pop("$skip", "0"))
            index = skip // PAGE_SIZE
            if url.path != "/api/retail/prices" or query != dict(expected_query) or index >= len(recorded):
                self._answer(400, {"Error": {"Code": "BadRequest", "Message": f"unexpected query {query}"}})
                return
            endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
            self._answer(200, json.loads(recorded[index].replace(RECORDED_HOST, endpoint)))

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/retail/prices", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
