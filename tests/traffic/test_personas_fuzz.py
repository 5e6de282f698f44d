"""Fuzz: any JSON value at any field of the persona file loads into personas the traffic run can send, or
is refused as the documented InputFileError naming file, line and field; valid personas round-trip."""

from __future__ import annotations

import h11
from hypothesis import example, given
from hypothesis import strategies as st

from shared.errors import InputFileError
from shared.json_input import parse_json_text
from shared.traffic.client import USER_ID_HEADER
from shared.traffic.personas import REASONING_EFFORTS, Persona, parse_personas
from shared.traffic.plan import plan_run
from shared.traffic.prompts import MIN_PROMPT_TOKENS
from tests import ROOT
from tests.support.fuzz import Mutation, hostile_text, json_text, loads, mutations, refused_clearly

SAMPLE = loads((ROOT / "shared" / "traffic" / "personas.sample.json").read_text(encoding="utf-8"))
KEYS = {"TRAFFIC_KEY_TEAM_SUPPORT": "k1", "TRAFFIC_KEY_TEAM_RESEARCH": "k2", "TRAFFIC_KEY_TEAM_BATCH": "k3"}
SOURCE = "personas.json"


def _sendable_header(value: str) -> None:
    """The value goes out as an HTTP/1.1 header field as the SDK's transport sends it (ASCII, h11's checks)."""
    value.encode("ascii")
    h11.Request(method="POST", target="/", headers=[("Host", "gateway"), (USER_ID_HEADER, value)])


def _load(document: object) -> tuple[Persona, ...]:
    return parse_personas(parse_json_text(json_text(document), SOURCE, "persona file").root, KEYS, SOURCE)


@given(mutations(SAMPLE))
@example(Mutation("replace", ("personas", 0, "user_id"), "caf\u00e9"))  # not sendable as a header: refused
@example(Mutation("replace", ("personas", 0, "user_id"), "a\r\nx-injected: 1"))
@example(Mutation("replace", ("personas", 0, "weight"), 10**400))  # inf as a float: refused
@example(Mutation("replace", ("personas", 1, "weight"), 1e-320))
def test_any_value_at_any_field_loads_something_sendable_or_is_refused_by_field(mutation: Mutation) -> None:
    try:
        personas = _load(mutation.apply(SAMPLE))
    except InputFileError as error:
        refused_clearly(error, SOURCE)
        return
    for persona in personas:
        _sendable_header(persona.user_id)
        assert persona.subscription_key and persona.deployment and persona.name
    # The traffic plan takes them as they are (weights, shares, prompt sizes).
    calls = plan_run(personas, requests=50, seed=7, send_window_seconds=60)
    assert len(calls) == 50 and {call.persona.name for call in calls} <= {p.name for p in personas}


def _surrogates(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)  # not text: the reader refuses them (own test)


_names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30)
_shares = st.decimals(min_value=0, max_value=1, places=3)


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "name": _names,
                "subscription": hostile_text.map(str.strip).filter(lambda text: text and not _surrogates(text)),
                "subscription_key_setting": st.sampled_from(sorted(KEYS)),
                "user_id": _names,
                "deployment": _names,
                "prompt_tokens": st.integers(MIN_PROMPT_TOKENS, 10_000).flatmap(
                    lambda low: st.fixed_dictionaries(
                        {"min": st.just(low), "max": st.integers(low, 20_000)},
                        optional={"distribution": st.sampled_from(["uniform", "log_uniform"])},
                    )
                ),
                "max_tokens": st.integers(1, 100_000),
                "weight": st.integers(1, 1000),
            },
            optional={
                "stream_share": _shares.map(float),
                "include_usage_share": _shares.map(float),
                "prefix_share": _shares.map(float),
                "reasoning_effort": st.sampled_from(REASONING_EFFORTS),
            },
        ),
        min_size=1,
        max_size=5,
        unique_by=lambda persona: persona["name"],
    )
)
def test_valid_personas_round_trip(personas: list[dict[str, object]]) -> None:
    loaded = _load({"personas": personas})
    for raw, persona in zip(personas, loaded, strict=True):
        assert (persona.name, persona.user_id, persona.deployment) == (raw["name"], raw["user_id"], raw["deployment"])
        assert persona.subscription == raw["subscription"]
        assert persona.subscription_key == KEYS[str(raw["subscription_key_setting"])]
        size = raw["prompt_tokens"]
        assert isinstance(size, dict)
        assert (persona.prompt_tokens.min_tokens, persona.prompt_tokens.max_tokens) == (size["min"], size["max"])
        assert persona.stream_share == raw.get("stream_share", 0.0)
        assert persona.include_usage_share == raw.get("include_usage_share", 1.0)
        assert persona.max_tokens == raw["max_tokens"] and persona.weight == raw["weight"]
        assert persona.reasoning_effort == raw.get("reasoning_effort")
