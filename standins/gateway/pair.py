"""The model simulator with a gateway in front of it, in this event loop: for tests and benchmarks.

Subscription keys are generated per start, as the stack does; everything listens on loopback.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from standins._server import RunningServer
from standins.gateway.config import PROJECT_ROOT, GatewayConfig, load_gateway_config
from standins.gateway.metrics import Clock, MetricsExporter, utc_now
from standins.gateway.server import exporter_of, start_gateway
from standins.gateway.sinks import InMemorySink, MetricSink
from standins.simulator import load_simulator_config, start_simulator
from standins.simulator.meters import TokenMeters
from standins.simulator.server import meters_of

STACK_CONFIG = PROJECT_ROOT / "standins" / "stack.config.json"


@dataclass
class GatewayPair:
    simulator: RunningServer
    gateway: RunningServer
    config: GatewayConfig
    sink: MetricSink

    @property
    def inference_url(self) -> str:
        """What clients use as ``azure_endpoint``."""
        return f"{self.gateway.url}/inference"

    @property
    def keys(self) -> dict[str, str]:
        """Subscription name → key."""
        return {sub.name: sub.key for sub in self.config.subscriptions}

    @property
    def exporter(self) -> MetricsExporter:
        return exporter_of(self.gateway)

    @property
    def meters(self) -> TokenMeters:
        """The model account's own token meters (what the simulator processed, whoever called)."""
        return meters_of(self.simulator)

    async def stop(self) -> None:
        await self.gateway.stop()
        await self.simulator.stop()


async def start_gateway_pair(
    *,
    config_path: Path = STACK_CONFIG,
    sink: MetricSink | None = None,
    simulator_settings: dict[str, Any] | None = None,
    gateway_settings: dict[str, Any] | None = None,
    clock: Clock = utc_now,
    meters: TokenMeters | None = None,
) -> GatewayPair:
    """Start both; ``*_settings`` override fields of SimulatorConfig / GatewayConfig; ``meters`` (with its own
    clock) are the simulator's token meters."""
    simulator_config = dataclasses.replace(load_simulator_config(config_path), **(simulator_settings or {}))
    simulator = await start_simulator(simulator_config, meters=meters)
    try:
        names = [sub["name"] for sub in json.loads(config_path.read_text(encoding="utf-8"))["subscriptions"]]
        base = load_gateway_config(
            config_path, subscription_keys={name: "local-" + secrets.token_hex(16) for name in names}
        )
        backend_id = base.default_backend_id or "foundry-backend"
        config = dataclasses.replace(base, backends={backend_id: simulator.url}, **(gateway_settings or {}))
        chosen_sink = sink if sink is not None else InMemorySink()
        gateway = await start_gateway(config, chosen_sink, clock=clock)
    except BaseException:
        await simulator.stop()
        raise
    return GatewayPair(simulator, gateway, config, chosen_sink)
