"""Azure OpenAI model simulator: chat completions with real token counts, pacing and faults.

Test hooks (request headers, forwarded by the gateway):
- ``x-sim-fault: 429|500|stall|truncate|none`` forces one request's fault (``none`` shields it).
- ``x-sim-completion-tokens: N`` forces the reply length (still capped by max_tokens).
"""

from __future__ import annotations

from standins.simulator.completion import COMPLETION_TOKENS_HEADER
from standins.simulator.config import (
    DeploymentConfig,
    FaultConfig,
    SimulatorConfig,
    load_simulator_config,
    simulator_config_from_mapping,
)
from standins.simulator.faults import FAULT_HEADER, Fault
from standins.simulator.server import create_app, start_simulator

__all__ = [
    "COMPLETION_TOKENS_HEADER",
    "FAULT_HEADER",
    "DeploymentConfig",
    "Fault",
    "FaultConfig",
    "SimulatorConfig",
    "create_app",
    "load_simulator_config",
    "simulator_config_from_mapping",
    "start_simulator",
]
