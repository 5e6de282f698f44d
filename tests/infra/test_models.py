"""Every model version we deploy can be deployed today and stays deployable for a while.

infra/model-retirements.json copies Microsoft's model retirement schedule (its sources name the
file, commit and ms.date). A version fails here when it is missing from that file, when its
lifecycle stage no longer lets a new subscription create a deployment (Deprecated, Retired), or
when it retires within RETIREMENT_MARGIN of the day the test runs: infra/main.bicep's default
`modelDeployments`, the stand-ins' deployments (standins/stack.config.json) and the personas'
deployments are all checked, so `azd up` and the local stack never ship a dead model.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest

from tests import ROOT
from tests.support.bicep import INFRA, MAIN, parse

RETIREMENTS_FILE = INFRA / "model-retirements.json"
RETIREMENTS: dict[str, Any] = json.loads(RETIREMENTS_FILE.read_text(encoding="utf-8"))
STACK = json.loads((ROOT / "standins" / "stack.config.json").read_text(encoding="utf-8"))
PERSONAS = json.loads((ROOT / "shared" / "traffic" / "personas.sample.json").read_text(encoding="utf-8"))["personas"]

# GA notices go out at least 60 days before retirement (articles/foundry/openai/includes/
# concepts-model-retirements-content.md, "Notifications"); 90 days leaves a release cycle to move.
RETIREMENT_MARGIN = timedelta(days=90)
# Lifecycle stages (same file, "Lifecycle stages"): Legacy still takes new deployments until it is
# deprecated; Deprecated takes them only from subscriptions that already deployed the version;
# Retired answers 410 Gone.
DEPLOYABLE_STAGES = {"Preview", "GA", "Legacy"}
KNOWN_STAGES = DEPLOYABLE_STAGES | {"Deprecated", "Retired"}


def _entries() -> dict[tuple[str, str], dict[str, Any]]:
    return {(entry["model"], entry["version"]): entry for entry in RETIREMENTS["models"]}


def deployability_problem(model: str, version: str, today: date) -> str | None:
    """Why `model` `version` cannot be (safely) deployed on `today`, or None."""
    entry = _entries().get((model, version))
    if entry is None:
        return f"{model} {version} is not in {RETIREMENTS_FILE.name}: add it from the retirement schedule"
    if entry["lifecycle"] not in DEPLOYABLE_STAGES:
        return f"{model} {version} is {entry['lifecycle']}: new subscriptions cannot deploy it"
    retirement = date.fromisoformat(entry["retirement"])
    if retirement - today <= RETIREMENT_MARGIN:
        return f"{model} {version} retires on {retirement}, within {RETIREMENT_MARGIN.days} days of {today}"
    return None


def deployed_versions() -> list[tuple[str, str, str]]:
    """(where, model, version) for every deployment infra or the stand-ins create."""
    found = [
        ("infra/main.bicep modelDeployments", d["model"], d["version"])
        for d in parse(MAIN)["parameters"]["modelDeployments"]["default"]
    ]
    found += [
        (f"standins/stack.config.json deployment {name}", d.get("model", name), d["model_version"])
        for name, d in STACK["deployments"].items()
    ]
    return found


def test_every_deployed_model_version_is_deployable_today() -> None:
    today = date.today()
    problems = [
        f"{where}: {problem}"
        for where, model, version in deployed_versions()
        if (problem := deployability_problem(model, version, today))
    ]
    assert not problems, "\n".join(problems)


def test_personas_call_deployments_the_stand_ins_and_infra_create() -> None:
    infra = {d["name"] for d in parse(MAIN)["parameters"]["modelDeployments"]["default"]}
    for persona in PERSONAS:
        assert persona["deployment"] in STACK["deployments"], persona["name"]
        assert persona["deployment"] in infra, persona["name"]


@pytest.mark.parametrize(
    ("model", "version", "today", "problem"),
    [
        ("gpt-5.6-luna", "2026-07-09", date(2027, 10, 12), None),  # 91 days left
        ("gpt-5.6-luna", "2026-07-09", date(2027, 10, 13), "retires on 2028-01-11, within 90 days"),
        ("gpt-5.6-luna", "2026-07-09", date(2028, 2, 1), "retires on 2028-01-11"),
        ("gpt-4o", "2024-11-20", date(2026, 11, 30), None),  # Legacy: still deployable
        ("gpt-4o-mini", "2024-07-18", date(2026, 11, 30), "is Deprecated"),
        ("gpt-35-turbo", "0125", date(2026, 11, 30), "is Retired"),
        ("gpt-4o", "2099-01-01", date(2026, 11, 30), "not in model-retirements.json"),
    ],
)
def test_deployability_rule(model: str, version: str, today: date, problem: str | None) -> None:
    found = deployability_problem(model, version, today)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_retirement_file_is_well_formed_and_sourced() -> None:
    sources = RETIREMENTS["sources"]
    for source in sources.values():
        assert source["repo"] and source["path"] and date.fromisoformat(source["ms_date"])
    keys = [(entry["model"], entry["version"]) for entry in RETIREMENTS["models"]]
    assert len(keys) == len(set(keys)), "a model version is listed twice"
    for entry in RETIREMENTS["models"]:
        assert entry["lifecycle"] in KNOWN_STAGES, entry
        assert entry["source"] in sources, entry
        date.fromisoformat(entry["retirement"])
        if "deprecation" in entry:
            assert date.fromisoformat(entry["deprecation"]) < date.fromisoformat(entry["retirement"]), entry
            assert entry.get("deprecation_source", entry["source"]) in sources, entry
