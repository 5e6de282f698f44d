"""Azure OpenAI model simulator: chat completions with real token counts, pacing and faults.

Reasoning deployments (the GPT-5 and o series) refuse ``max_tokens`` and bill hidden reasoning
tokens inside ``completion_tokens`` (``completion_tokens_details.reasoning_tokens``), never in the
text or the stream, as Azure does; ``reasoning_effort`` sets how many (default: the simulator's
``default_reasoning_effort``), and ``max_completion_tokens`` bounds reasoning and text together.
With local auth disabled (as infra deploys the account) any key header is refused.

Test hooks (request headers, forwarded by the gateway):
- ``x-sim-fault: 429|500|stall|truncate|none`` forces one request's fault (``none`` shields it).
- ``x-sim-completion-tokens: N`` forces the visible reply length (still capped by the token limit).
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
