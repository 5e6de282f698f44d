"""App settings → one costs run (kept out of function_app.py so it stays wiring only)."""

from __future__ import annotations

from typing import cast

from shared.config import Settings
from shared.cost_query import MetricsSchema
from shared.costs import CostRunSummary, CostSettings, run_costs


def cost_settings(settings: Settings) -> CostSettings:
    return CostSettings(
        workspace_id=settings.log_analytics_workspace_id,
        query_endpoint=settings.log_analytics_endpoint,
        ingestion_endpoint=settings.logs_ingestion_endpoint,
        ingestion_rule_id=settings.logs_ingestion_rule_id,
        ingestion_stream=settings.cost_dcr_stream,
        metrics_schema=cast(MetricsSchema, settings.cost_metrics_schema),
        metrics_resource_id=settings.cost_metrics_resource_id,
        window_minutes=settings.cost_window_minutes,
        ingestion_delay_minutes=settings.cost_ingestion_delay_minutes,
        recompute_windows=settings.cost_recompute_windows,
        price_table_path=settings.cost_price_table,
        deployment_map_path=settings.cost_deployment_map,
        state_connection_string=settings.cost_state_connection_string,
        state_table_endpoint=settings.cost_state_table_endpoint,
        state_table_name=settings.cost_state_table,
        upload_chunk_rows=settings.cost_upload_chunk_rows,
        upload_attempts=settings.cost_upload_attempts,
        query_attempts=settings.cost_query_attempts,
        retry_delay_seconds=settings.cost_retry_delay_seconds,
        azure_client_id=settings.azure_client_id,
        ca_bundle=settings.azure_ca_bundle,
    )


def run_costs_from_settings(settings: Settings) -> CostRunSummary:
    return run_costs(cost_settings(settings))
