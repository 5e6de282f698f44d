"""The gateway stand-in's bypass demo: a share of one deployment's calls reaches the model unmetered."""

from __future__ import annotations

import json

import pytest

from standins.gateway.config import BypassConfig, GatewayConfigError, bypass_config, load_gateway_config
from standins.gateway.server import BypassPicker
from tests import ROOT


def test_a_share_is_spread_evenly_and_only_over_its_deployment() -> None:
    picker = BypassPicker(BypassConfig("gpt-5.6-terra", 0.05))
    picks = [picker.take("GPT-5.6-terra") for _ in range(60)]  # deployment names ignore case
    assert [index + 1 for index, picked in enumerate(picks) if picked] == [20, 40, 60]
    assert not any(picker.take("gpt-5.6-luna") for _ in range(100))
    assert picker.bypassed == 3


def test_the_stack_config_ships_it_off_and_the_share_can_be_set_at_start() -> None:
    config_path = ROOT / "standins" / "stack.config.json"
    keys = {"team-support": "k1"}
    assert load_gateway_config(config_path, subscription_keys=keys).bypass is None  # make run: no bypass
    chosen = load_gateway_config(config_path, subscription_keys=keys, bypass_share=0.05).bypass
    assert chosen == BypassConfig(json.loads(config_path.read_text())["gateway"]["bypass"]["deployment"], 0.05)
    with pytest.raises(GatewayConfigError):
        bypass_config({"deployment": "d"}, 1.5)
