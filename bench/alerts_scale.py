"""Benchmark: one alert run over 100,000 users' cost summaries, 5,000 of them firing at once.

1. generate: TokenCostSummary_CL rows straight into a DuckDB file, as the costs run writes them (one
   complete revision per hourly window): `--users` users, each with a row in each of the last `--hours`
   hourly windows (the open one included) and in the same hour as the latest ended one on each of the
   `--baseline-days` days before (what the spike rule compares it with). Usual users spend a few cents an
   hour; `--firing` of them spend $8 (warning) or $25 (critical) in both the current and the latest ended
   hour, so they cross the hourly threshold and spike against their baseline: two notifications each;
2. the alert run through the real code path (shared/alerts/run.py evaluate_and_notify): LogsQueryClient to
   the Azure Monitor stand-in serving the file over HTTPS (its own process; alert-usage.kql run by
   duckdb-kql, in parts within the query API's limits), evaluation of an `each:user` hourly threshold and
   an `each:user` hourly spike rule (shared/alerts/evaluate.py), the state claims in InMemoryAlertStateStore,
   the digest rendered and handed to InMemoryTransport;
3. the same run again a minute later on the state the first left: every alert was told, so nothing is sent.
Each run is its own process, reporting wall time, peak RSS and the run's own per-step seconds; the last
lines compare with the issue's targets (under 30 s, under 1 GB) and say what the digest looks like.
Run: `python -m bench.alerts_scale [--users 100000] [--firing 5000] [--keep DIR]`.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.support import peak_rss_mb, run_phase, with_monitor

NOW = datetime(2026, 11, 27, 10, 20, tzinfo=UTC)  # the open window is 10:00-11:00, the latest ended 09:00-10:00
DEPLOYMENTS = ("gpt-5.6-sol", "gpt-5.6-luna", "gpt-5.6-terra")
SUBSCRIPTIONS = 700
WARNING_USD, CRITICAL_USD = 8.0, 25.0
RULES = {
    "currency": "USD",
    "recipient_groups": {"platform": ["platform-team@example.com"]},
    "rules": [
        {"name": "hourly-cost-per-user", "kind": "threshold", "metric": "cost", "window": "hour",
         "scope": "each:user", "warning": 5, "critical": 20, "recipients": "platform"},
        {"name": "user-cost-spike", "kind": "spike", "metric": "cost", "window": "hour", "scope": "each:user",
         "baseline_days": 7, "factor_warning": 3, "factor_critical": 10, "min_value": 1, "recipients": "platform"},
    ],
}  # fmt: skip
TARGET_SECONDS, TARGET_MB = 30.0, 1024.0


# -- phases (each in its own process) -------------------------------------------------------------


def generate(db: Path, users: int, hours: int, baseline_days: int, firing: int, seed: int) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from standins.monitor.store import MonitorStore

    rng = np.random.default_rng(seed)
    open_window = NOW.replace(minute=0)
    latest_ended = open_window - timedelta(hours=1)
    windows = [open_window - timedelta(hours=back) for back in range(hours)]
    windows += [latest_ended - timedelta(days=days) for days in range(1, baseline_days + 1)]
    user_ids = np.array([f"user-{index:06d}" for index in range(users)], dtype=object)
    subscription_ids = np.array([f"sub-{index % SUBSCRIPTIONS:04d}" for index in range(users)], dtype=object)
    deployments = rng.choice(np.array(DEPLOYMENTS, dtype=object), users)
    # The firing users, spread over the user ids; half of them critical.
    hot = rng.choice(users, firing, replace=False)
    level_usd = np.zeros(users)
    level_usd[hot] = np.where(np.arange(firing) % 2 == 0, CRITICAL_USD, WARNING_USD)
    inserted = 0
    with MonitorStore(db) as store:
        for start in windows:
            cost_usd = rng.integers(1, 20, users) / 100  # $0.01-$0.19 an hour
            if start in (open_window, latest_ended):
                cost_usd = np.where(level_usd > 0, level_usd, cost_usd)
            total_tokens = (cost_usd * 400_000).astype("int64")  # about $2.50 per million tokens
            prompt_tokens = total_tokens * 4 // 5
            streamed = rng.random(users) < 0.3
            revision = min(start + timedelta(minutes=80), NOW - timedelta(minutes=1))
            frame = pd.DataFrame({
                "TimeGenerated": pd.Timestamp(revision), "WindowStart": pd.Timestamp(start),
                "WindowEnd": pd.Timestamp(start + timedelta(hours=1)), "WindowMinutes": np.int32(60),
                "IsFinal": start + timedelta(minutes=75) <= NOW, "Revision": pd.Timestamp(revision),
                "RevisionRows": np.int64(users), "PriceVersion": "bench", "Deployment": deployments,
                "Model": deployments, "SubscriptionId": subscription_ids, "UserId": user_ids,
                "ApiId": "inference-api", "Requests": rng.integers(1, 40, users),
                "PromptTokens": prompt_tokens, "CachedPromptTokens": np.int64(0),
                "CompletionTokens": total_tokens - prompt_tokens, "TotalTokens": total_tokens,
                "EstimatedRequests": np.where(streamed, 1, 0),
                "EstimatedPromptTokens": np.where(streamed, prompt_tokens, 0),
                "EstimatedCompletionTokens": np.where(streamed, total_tokens - prompt_tokens, 0),
                "EstimatedTotalTokens": np.where(streamed, total_tokens, 0), "PromptCost": cost_usd * 0.8,
                "CachedPromptCost": 0.0, "CompletionCost": cost_usd * 0.2, "TotalCost": cost_usd,
                "EstimatedCost": np.where(streamed, cost_usd, 0.0), "Currency": "USD", "Unpriced": False,
                "CacheDiscountMetered": False, "DeploymentType": "GlobalStandard", "CostBasis": "usage",
            })  # fmt: skip
            inserted += store.insert_frame("TokenCostSummary_CL", frame)
    return {"rows": inserted, "windows": len(windows), "firing_users": firing}


def alert_run(stack_file: Path, state_file: Path, rules_file: Path, minutes_later: int) -> dict[str, Any]:
    from azure.identity import ManagedIdentityCredential
    from azure.monitor.query import LogsQueryClient

    from shared.alerts.run import AlertClients, evaluate_and_notify
    from shared.alerts.state import InMemoryAlertStateStore
    from shared.config import load_settings
    from shared.email.delivery import InMemoryTransport

    info = json.loads(stack_file.read_text())
    os.environ.update(info["identity_env"])
    settings = load_settings({
        "GATEWAY_URL": "https://unused.example", "LOG_ANALYTICS_WORKSPACE_ID": info["workspace_id"],
        "LOG_ANALYTICS_ENDPOINT": info["url"], "LOGS_INGESTION_ENDPOINT": info["url"],
        "LOGS_INGESTION_RULE_ID": info["rule_id"], "COST_STATE_CONNECTION_STRING": "unused (state kept in memory)",
        "AZURE_CA_BUNDLE": info["ca"], "ALERT_RULES_FILE": str(rules_file),
        "ALERT_EMAIL_FROM": "ai-gateway-alerts@example.com",
    }).alerts  # fmt: skip
    # The state the previous run left, if any: the in-memory twin's records, carried over in a file.
    state = InMemoryAlertStateStore()
    for record in pickle.loads(state_file.read_bytes()) if state_file.exists() else []:
        state.write(replace(record, etag=None))
    transport = InMemoryTransport()
    clients = AlertClients(
        query=LogsQueryClient(ManagedIdentityCredential(), endpoint=info["url"], connection_verify=info["ca"]),
        state=state,
        transport=transport,
    )
    now = NOW + timedelta(minutes=minutes_later)
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    summary = evaluate_and_notify(settings, None, now=now, clients=clients, wall_clock=lambda: now)
    seconds, cpu_seconds = time.perf_counter() - started, _cpu_seconds() - cpu_started
    records = state.load().values()
    state_file.write_bytes(pickle.dumps(list(records)))
    emails = [sent.message for sent in transport.sent]
    return {
        "seconds": seconds, "cpu_seconds": cpu_seconds,
        "step_seconds": {name: round(value, 2) for name, value in summary.step_seconds.items()},
        "findings": summary.evaluated, "firing": summary.firing, "notifications": len(summary.notifications),
        "emails": len(emails), "email_bytes": [len(message.as_bytes()) for message in emails],
        "email_subjects": [str(message["Subject"]) for message in emails],
        "email_text_lines": [_text_lines(message) for message in emails],
        "charts": [sum(part.get_content_type() == "image/png" for part in message.walk()) for message in emails],
        "state_records": len(records), "state_open": sum(record.open for record in records),
        "state_pending": sum(bool(record.pending_kind) for record in records),
    }  # fmt: skip


def _cpu_seconds() -> float:
    """This process's CPU time (all its threads): what the run itself costs, apart from waiting on the service."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _text_lines(message: Any) -> int:
    part = message.get_body(preferencelist=("plain",))
    return len(str(part.get_content()).splitlines()) if part is not None else 0


# -- orchestration ----------------------------------------------------------------------------------


def _phase(*args: str) -> dict[str, Any]:
    return run_phase("bench.alerts_scale", *args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.alerts_scale", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    phase = sub.add_parser("phase")
    phase.add_argument("name", choices=["generate", "alerts"])
    phase.add_argument("target", type=Path)
    phase.add_argument("--users", type=int, default=100_000)
    phase.add_argument("--hours", type=int, default=24)
    phase.add_argument("--baseline-days", type=int, default=7)
    phase.add_argument("--firing", type=int, default=5_000)
    phase.add_argument("--state", type=Path)
    phase.add_argument("--rules", type=Path)
    phase.add_argument("--minutes-later", type=int, default=0)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--hours", type=int, default=24, help="hourly windows per user, up to the open one")
    parser.add_argument("--baseline-days", type=int, default=7, help="earlier days with the spike's hour")
    parser.add_argument("--firing", type=int, default=5_000, help="users over the threshold and spiking")
    parser.add_argument("--keep", type=Path, help="work directory to keep (default: a temporary one)")
    args = parser.parse_args(argv)

    if args.command == "phase":
        if args.name == "generate":
            result = generate(args.target, args.users, args.hours, args.baseline_days, args.firing, seed=7)
        else:
            result = alert_run(args.target, args.state, args.rules, args.minutes_later)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return 0

    work = args.keep or Path(tempfile.mkdtemp(prefix="alerts-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "monitor.duckdb"
    figures: dict[str, Any] = {"users": args.users, "firing": args.firing}
    if not db.exists():
        figures["generate"] = _phase("generate", str(db), "--users", str(args.users), "--hours", str(args.hours),
                                     "--baseline-days", str(args.baseline_days), "--firing", str(args.firing))
        print(f"generated: {figures['generate']}", flush=True)
    rules_file, state_file = work / "alerts.json", work / "alert-state.pickle"
    rules_file.write_text(json.dumps(RULES))
    state_file.unlink(missing_ok=True)  # every benchmark starts with no alert told

    def run(minutes_later: int) -> dict[str, Any]:
        return with_monitor(work, db, lambda stack_file: _phase(
            "alerts", str(stack_file), "--state", str(state_file), "--rules", str(rules_file),
            "--minutes-later", str(minutes_later)))  # fmt: skip

    figures["first"] = run(0)
    print(f"first run: {figures['first']}", flush=True)
    figures["again"] = run(1)
    print(f"the run a minute later: {figures['again']}", flush=True)
    print(_verdict(figures))
    (work / "figures.json").write_text(json.dumps(figures, indent=2))
    return 0


def _verdict(figures: dict[str, Any]) -> str:
    first, again = figures["first"], figures["again"]
    steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in first["step_seconds"].items())
    lines = [
        f"{figures['users']:,} users, {figures['firing']:,} firing: first run {first['seconds']:.1f}s ({steps}), "
        f"peak {first['peak_rss_mb']:.0f} MB; target under {TARGET_SECONDS:.0f}s and {TARGET_MB:.0f} MB: "
        + ("met" if first["seconds"] < TARGET_SECONDS and first["peak_rss_mb"] < TARGET_MB else "MISSED"),
        f"  the run's own CPU {first['cpu_seconds']:.1f}s; the rest of its wall time is waiting on the query API "
        "(the monitor stand-in's DuckDB, on the same cores)",
        f"  {first['findings']:,} findings, {first['firing']:,} firing, {first['notifications']:,} notifications in "
        f"{first['emails']} email(s) of {', '.join(f'{size / 1024:.0f} KiB' for size in first['email_bytes'])} "
        f"({', '.join(map(str, first['charts']))} charts, {', '.join(map(str, first['email_text_lines']))} text lines)",
        f"  state: {first['state_records']:,} records, {first['state_open']:,} open, {first['state_pending']} pending",
        f"a minute later: {again['seconds']:.1f}s, peak {again['peak_rss_mb']:.0f} MB, {again['emails']} emails, "
        f"{again['notifications']} notifications (every firing user already told)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
