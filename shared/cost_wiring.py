"""App settings → one costs run (kept out of function_app.py so it stays wiring only)."""

from __future__ import annotations

from typing import cast

from shared.alerts.run import AlertSettings, Delivery, evaluate_and_notify
from shared.config import Settings
from shared.costs.outputs import CostRunSummary
from shared.costs.query import MetricsSchema
from shared.costs.run import CostSettings, CostUploadError, run_costs


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


def alert_settings(settings: Settings) -> AlertSettings:
    return AlertSettings(
        rules_file=settings.alert_rules_file,
        workspace_id=settings.log_analytics_workspace_id,
        query_endpoint=settings.log_analytics_endpoint,
        window_minutes=settings.cost_window_minutes,
        state_connection_string=settings.cost_state_connection_string,
        state_table_endpoint=settings.cost_state_table_endpoint,
        state_table_name=settings.alert_state_table,
        delivery=cast(Delivery, settings.alert_delivery),
        sender=settings.alert_email_from,
        smtp_host=settings.alert_smtp_host,
        smtp_port=settings.alert_smtp_port,
        smtp_username=settings.alert_smtp_username,
        smtp_password=settings.alert_smtp_password,
        smtp_starttls=settings.alert_smtp_starttls,
        acs_endpoint=settings.alert_acs_endpoint,
        lease_seconds=settings.alert_lease_seconds,
        dashboard_url=settings.alert_dashboard_url,
        azure_client_id=settings.azure_client_id,
        ca_bundle=settings.azure_ca_bundle,
    )


def run_costs_from_settings(settings: Settings) -> CostRunSummary:
    """A costs run, then the alert rules on what it produced."""
    try:
        summary = run_costs(cost_settings(settings))
    except CostUploadError as error:
        # Windows that did upload still count: alert on them, then fail the run loudly.
        evaluate_and_notify(alert_settings(settings), error.summary)
        raise
    evaluate_and_notify(alert_settings(settings), summary)
    return summary
