"""The host's admin HTTP API, as ``func start`` serves it on 127.0.0.1:7071.

- ``GET  /admin/host/status``           -> {"state": "Running", ...}
- ``GET  /admin/functions``             -> the functions with their bindings (+ resolved schedule)
- ``GET  /admin/functions/{name}``      -> one function, 404 if unknown
- ``POST /admin/functions/{name}``      -> body {"input": ""}; 202 Accepted, runs it now in the background
Stand-in only (not in Azure), for tests and scripts that must wait for a run:
- the 202 carries the invocation id in ``X-Invocation-Id``
- ``GET /admin/functions/{name}/status`` -> next run, whether it is running, recent invocations
  (newest first) with id, status (Queued|Running|Succeeded|Failed), times, past_due and error
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from standins.funchost.invocations import FunctionRunner

if TYPE_CHECKING:
    from standins.funchost.host import LocalFunctionsHost

HOST_KEY: web.AppKey[LocalFunctionsHost] = web.AppKey("host")
INVOCATION_ID_HEADER = "X-Invocation-Id"


def _host(request: web.Request) -> LocalFunctionsHost:
    return request.app[HOST_KEY]


def _runner(request: web.Request) -> FunctionRunner:
    name = request.match_info["name"]
    runner = _host(request).find_runner(name)
    if runner is None:
        raise web.HTTPNotFound(text=f"function '{name}' not found")
    return runner


def _function_json(request: web.Request, runner: FunctionRunner) -> dict[str, Any]:
    function = runner.function
    return {
        "name": function.name,
        "language": "python",
        "isDisabled": function.disabled,
        "config": {"bindings": function.bindings},
        "invoke_url_template": str(
            request.url.with_path(f"/admin/functions/{function.name}").with_query(None)
        ),
        "schedule": function.schedule.expression,
        "schedule_setting": function.raw_schedule,
        "next_run": runner.next_run.isoformat() if runner.next_run else None,
    }


async def host_status(request: web.Request) -> web.Response:
    return web.json_response({"state": _host(request).state, "version": "local-standin"})


async def list_functions(request: web.Request) -> web.Response:
    return web.json_response([_function_json(request, runner) for runner in _host(request).runners.values()])


async def get_function(request: web.Request) -> web.Response:
    return web.json_response(_function_json(request, _runner(request)))


async def invoke_function(request: web.Request) -> web.Response:
    runner = _runner(request)
    body = await request.text()
    if body.strip():
        try:
            payload = json.loads(body)
        except json.JSONDecodeError:
            raise web.HTTPBadRequest(text='body must be JSON like {"input": ""}') from None
        if not isinstance(payload, dict):
            raise web.HTTPBadRequest(text='body must be a JSON object like {"input": ""}')
    invocation = _host(request).trigger(runner.function.name)
    return web.Response(status=202, headers={INVOCATION_ID_HEADER: invocation.id})


async def function_status(request: web.Request) -> web.Response:
    runner = _runner(request)
    recent = [invocation.to_json() for invocation in reversed(runner.history)]
    return web.json_response(
        {
            "name": runner.function.name,
            "running": runner.busy,
            "next_run": runner.next_run.isoformat() if runner.next_run else None,
            "last_invocation": recent[0] if recent else None,
            "invocations": recent,
        }
    )


def admin_app(host: LocalFunctionsHost) -> web.Application:
    app = web.Application()
    app[HOST_KEY] = host
    app.router.add_get("/admin/host/status", host_status)
    app.router.add_get("/admin/functions", list_functions)
    app.router.add_get("/admin/functions/{name}", get_function)
    app.router.add_post("/admin/functions/{name}", invoke_function)
    app.router.add_get("/admin/functions/{name}/status", function_status)
    return app
