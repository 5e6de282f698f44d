"""The API Management gateway stand-in: executes the repository's policy.xml on loopback.

See README.md in this package for the supported policy elements and expressions.
"""

from __future__ import annotations

from standins.gateway.config import (
    AppInsightsConfig,
    GatewayConfig,
    GatewayConfigError,
    SubscriptionConfig,
    load_gateway_config,
)
from standins.gateway.metrics import MetricAggregator, MetricsExporter
from standins.gateway.policy import CompiledPolicy, PolicyError, compile_policy
from standins.gateway.server import create_app, exporter_of, start_gateway
from standins.gateway.sinks import AggregatedMetric, AppInsightsTrackSink, InMemorySink, MetricSink

__all__ = [
    "AggregatedMetric",
    "AppInsightsConfig",
    "AppInsightsTrackSink",
    "CompiledPolicy",
    "GatewayConfig",
    "GatewayConfigError",
    "InMemorySink",
    "MetricAggregator",
    "MetricSink",
    "MetricsExporter",
    "PolicyError",
    "SubscriptionConfig",
    "compile_policy",
    "create_app",
    "exporter_of",
    "load_gateway_config",
    "start_gateway",
]
