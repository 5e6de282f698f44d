"""App settings → one traffic run (kept out of function_app.py so it stays wiring only)."""

from __future__ import annotations

from collections.abc import Mapping

from shared.azure_clients import AzureAccess
from shared.config import Settings
from shared.traffic.run import TrafficRunSummary, TrafficSettings, run_traffic


def traffic_settings(settings: Settings, environ: Mapping[str, str]) -> TrafficSettings:
    return TrafficSettings(
        gateway_url=settings.gateway_url,
        openai_api_version=settings.openai_api_version,
        personas_file=settings.traffic_personas_file,
        seed=settings.traffic_seed,
        requests_per_run=settings.traffic_requests_per_run,
        concurrency=settings.traffic_concurrency,
        time_budget_seconds=settings.traffic_time_budget_seconds,
        request_timeout_seconds=settings.traffic_request_timeout_seconds,
        max_retries=settings.traffic_max_retries,
        failure_warn_ratio=settings.traffic_failure_warn_ratio,
        ingestion_endpoint=settings.logs_ingestion_endpoint,
        ingestion_rule_id=settings.logs_ingestion_rule_id,
        ingestion_stream=settings.traffic_ingestion_stream,
        environ=environ,  # the personas name the app settings holding their subscription keys
    )


def run_traffic_from_settings(settings: Settings, environ: Mapping[str, str]) -> TrafficRunSummary:
    access = AzureAccess(settings.azure_client_id, settings.azure_ca_bundle)
    return run_traffic(traffic_settings(settings, environ), access.logs_ingestion_client)
