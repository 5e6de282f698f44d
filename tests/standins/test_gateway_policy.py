"""The gateway stand-in compiles policy.xml at start and refuses, with a line number, what it cannot run."""

from __future__ import annotations

import json
import re
from xml.sax.saxutils import escape

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from standins.gateway import PolicyError, compile_policy
from standins.gateway.config import SubscriptionConfig
from standins.gateway.context import ExpressionError, GatewayIdentity, RequestContext
from standins.gateway.executor import run_inbound
from standins.gateway.expressions import ExpressionSyntaxError, compile_value
from standins.gateway.policy import EmitTokenMetricStep
from tests import ROOT

PLACEHOLDERS = json.loads((ROOT / "standins" / "stack.config.json").read_text())["gateway"][
    "policy_placeholders"
]


def _policy(inbound: str, *, backend: str = "<base />") -> str:
    # Line 1 is <policies>, line 2 <inbound>, so the first inbound statement is on line 3.
    return f"<policies>\n<inbound>\n{inbound}\n</inbound>\n<backend>{backend}</backend>\n</policies>\n"


def _context(
    headers: dict[str, str] | None = None,
    parameters: dict[str, str] | None = None,
    body: bytes = b'{"messages": []}',
) -> RequestContext:
    return RequestContext(
        api_id="inference-api",
        operation_id="chat-completions",
        subscription=SubscriptionConfig("team-a", "k", "ai-premium", "lead", display_name="Team A"),
        ip_address="127.0.0.9",
        request_headers=CIMultiDictProxy(CIMultiDict(headers or {})),
        matched_parameters=parameters if parameters is not None else {"deployment-id": "gpt-4o"},
        gateway=GatewayIdentity("West Europe", "managed"),
        backend_id=None,
        outgoing_headers=CIMultiDict(headers or {}),
        request_body=body,
    )


def _dimensions(xml: str, context: RequestContext) -> dict[str, str]:
    policy = compile_policy(xml, "p.xml")
    run_inbound(policy, context, "token")
    assert context.emissions, "the policy emitted nothing"
    return dict(context.emissions[0].dimensions)


def test_repository_policy_compiles_and_fills_every_dimension() -> None:
    policy = compile_policy((ROOT / "policy.xml").read_text(), "policy.xml", placeholders=PLACEHOLDERS)
    assert policy.backend_ids == {PLACEHOLDERS["backend-id"]}
    context = _context(
        {"x-user-id": "alice", "api-key": "gateway-key", "Ocp-Apim-Subscription-Key": "gateway-key"},
        body=b'{"messages": [], "stream": true}',
    )
    run_inbound(policy, context, "mi-token")
    assert context.outgoing_headers["Authorization"] == "Bearer mi-token"
    # APIM forwards the subscription key unless the policy deletes it: ours does.
    assert "api-key" not in context.outgoing_headers
    assert "Ocp-Apim-Subscription-Key" not in context.outgoing_headers
    assert context.backend_id == PLACEHOLDERS["backend-id"]
    [emission] = context.emissions
    assert emission.namespace == PLACEHOLDERS["metric-namespace"]
    assert dict(emission.dimensions) == {
        "Subscription ID": "team-a",
        "User ID": "alice",
        "API ID": "inference-api",
        "Streamed": "True",
        "Deployment": "gpt-4o",
    }


@pytest.mark.parametrize(
    ("body", "streamed"),
    [
        (b'{"messages": [], "stream": false}', "False"),
        (b'{"messages": []}', "False"),  # no "stream": null, so the ?? default
        (b'{"messages": [], "stream": true, "stream_options": {"include_usage": true}}', "True"),
    ],
)
def test_repository_policy_streamed_dimension_reads_the_request_body(body: bytes, streamed: str) -> None:
    policy = compile_policy((ROOT / "policy.xml").read_text(), "policy.xml", placeholders=PLACEHOLDERS)
    context = _context(body=body)
    run_inbound(policy, context, "t")
    assert context.emissions[0].dimensions["Streamed"] == streamed


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]"])
def test_a_body_expression_on_a_body_that_is_not_a_json_object_fails_the_request(body: bytes) -> None:
    # JObject parsing throws, and an expression that throws is APIM's 500.
    policy = compile_policy((ROOT / "policy.xml").read_text(), "policy.xml", placeholders=PLACEHOLDERS)
    with pytest.raises(ExpressionError, match="not a JSON object"):
        run_inbound(policy, _context(body=body), "t")


@pytest.mark.parametrize(
    ("expression", "body", "expected"),
    [
        ('(string)context.Request.Body.As<JObject>(preserveContent: true)["model"]', b'{"model": "m1"}', "m1"),
        ('(string)context.Request.Body.As<JObject>(true).SelectToken("a.b")', b'{"a": {"b": 7}}', "7"),
        ('(string)context.Request.Body.As<JObject>(true)["a"]["b"] ?? "none"', b'{"a": {}}', "none"),
        ('(string)context.Request.Body.As<JObject>(true)["x"] ?? (string)context.Subscription.Id', b"{}", "team-a"),
        ('"s-" + (string)context.Request.Body.As<JObject>(true)["stream"]', b'{"stream": false}', "s-False"),
    ],
)
def test_body_expressions(expression: str, body: bytes, expected: str) -> None:
    xml = _policy(f'<llm-emit-token-metric>{_dimension("D", "@(" + expression + ")")}</llm-emit-token-metric>')
    assert _dimensions(xml, _context(body=body)) == {"D": expected}


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ('(string)context.Request.Body.As<JObject>()["stream"]', "preserveContent: true"),
        ('(string)context.Request.Body.As<JObject>(preserveContent: false)["stream"]', "preserveContent: true"),
        ('(string)context.Request.Body.As<string>(true)', "only As<JObject>"),
        ('(string)context.Request.Body.As<JObject>(true).SelectToken("$..x")', "SelectToken path"),
    ],
)
def test_unsupported_body_expressions_fail_the_start(expression: str, problem: str) -> None:
    xml = _policy(f'<llm-emit-token-metric>{_dimension("D", "@(" + expression + ")")}</llm-emit-token-metric>')
    with pytest.raises(PolicyError, match=re.escape(problem)):
        compile_policy(xml, "p.xml")


def test_header_default_applies_when_the_header_is_missing() -> None:
    policy = compile_policy((ROOT / "policy.xml").read_text(), "policy.xml", placeholders=PLACEHOLDERS)
    context = _context()
    run_inbound(policy, context, "t")
    assert context.emissions[0].dimensions["User ID"] == "(none)"


def _dimension(name: str, value: str | None = None) -> str:
    """A <dimension> element; quotes in the value become &quot; as in policy.xml."""
    if value is None:
        return f'<dimension name="{name}" />'
    return f'<dimension name="{name}" value="{escape(value, {chr(34): "&quot;"})}" />'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("@(context.Subscription.Id)", "team-a"),
        ("@(context.Subscription.Name)", "Team A"),
        ("@(context.Product.Id)", "ai-premium"),
        ("@(context.User.Id)", "lead"),
        ("@(context.Api.Id)", "inference-api"),
        ('@( context.Request.Headers.GetValueOrDefault("X-Team") )', "t1"),
        ('@(context.Request.Headers.GetValueOrDefault("x-absent"))', ""),
        ('@("lit" + context.Request.MatchedParameters["deployment-id"])', "litgpt-4o"),
        ('@("say \\"hi\\"")', 'say "hi"'),
        ("plain text", "plain text"),
    ],
)
def test_supported_values_evaluate(value: str, expected: str) -> None:
    xml = _policy(
        f"<azure-openai-emit-token-metric>{_dimension('a', value)}</azure-openai-emit-token-metric>"
    )
    assert _dimensions(xml, _context({"x-team": "t1"})) == {"a": expected}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Location", "West Europe"),
        ("Gateway ID", "managed"),
        ("Operation ID", "chat-completions"),
        ("Product ID", "ai-premium"),
        ("User ID", "lead"),
        ("Subscription ID", "team-a"),
        ("API ID", "inference-api"),
    ],
)
def test_default_dimensions_need_no_value(name: str, expected: str) -> None:
    xml = _policy(f"<azure-openai-emit-token-metric>{_dimension(name)}</azure-openai-emit-token-metric>")
    assert _dimensions(xml, _context()) == {name: expected}


def test_backend_id_is_a_default_dimension_of_llm_emit_only() -> None:
    llm = _policy(
        '<set-backend-service backend-id="b1" />\n'
        '<llm-emit-token-metric><dimension name="Backend ID" /></llm-emit-token-metric>'
    )
    assert _dimensions(llm, _context()) == {"Backend ID": "b1"}
    step = compile_policy(llm, "p.xml").inbound[-1]
    assert isinstance(step, EmitTokenMetricStep)
    assert (step.policy, step.namespace) == (
        "llm-emit-token-metric",
        "API Management",
    )  # the documented default
    azure = _policy(
        '<azure-openai-emit-token-metric>\n<dimension name="Backend ID" />\n</azure-openai-emit-token-metric>'
    )
    with pytest.raises(PolicyError, match=r"p\.xml:4: <dimension> dimension 'Backend ID' has no value"):
        compile_policy(azure, "p.xml")


def test_unsupported_policy_element_names_its_line() -> None:
    xml = _policy('<base />\n<rate-limit calls="10" renewal-period="60" />')
    with pytest.raises(PolicyError, match=r"^p\.xml:4: <rate-limit> unsupported policy in <inbound>"):
        compile_policy(xml, "p.xml")


def test_unsupported_expression_names_its_line_and_text() -> None:
    xml = _policy(
        '<azure-openai-emit-token-metric namespace="n">\n'
        '<dimension name="Body" value="@(context.Request.Body.As&lt;string&gt;())" />\n'
        "</azure-openai-emit-token-metric>"
    )
    with pytest.raises(PolicyError) as raised:
        compile_policy(xml, "p.xml")
    message = str(raised.value)
    assert message.startswith("p.xml:4: <dimension>")
    assert "@(context.Request.Body.As<string>())" in message


def test_multi_statement_expressions_are_refused() -> None:
    xml = _policy('<set-header name="x"><value>@{ return "a"; }</value></set-header>')
    with pytest.raises(PolicyError, match=r"p\.xml:3: <value> .*multi-statement"):
        compile_policy(xml, "p.xml")


def test_dimension_without_value_must_be_a_default_dimension() -> None:
    xml = _policy(
        '<azure-openai-emit-token-metric>\n<dimension name="API ID" />\n<dimension name="Client IP" />\n'
        "</azure-openai-emit-token-metric>"
    )
    with pytest.raises(PolicyError, match=r"p\.xml:5: <dimension> dimension 'Client IP' has no value"):
        compile_policy(xml, "p.xml")


def test_more_than_five_dimensions_is_refused() -> None:
    dimensions = "".join(f'<dimension name="d{i}" value="v" />' for i in range(6))
    xml = _policy(f"<base />\n<azure-openai-emit-token-metric>{dimensions}</azure-openai-emit-token-metric>")
    with pytest.raises(
        PolicyError, match=r"p\.xml:4: <azure-openai-emit-token-metric> has 6 dimensions.*at most 5"
    ):
        compile_policy(xml, "p.xml")


def test_five_dimensions_are_accepted() -> None:
    dimensions = "".join(f'<dimension name="d{i}" value="v{i}" />' for i in range(5))
    xml = _policy(f"<llm-emit-token-metric>{dimensions}</llm-emit-token-metric>")
    assert len(_dimensions(xml, _context())) == 5


def test_malformed_xml_reports_the_parser_line() -> None:
    xml = "<policies>\n<inbound>\n<base />\n<set-header name='a'>\n</inbound>\n</policies>\n"
    with pytest.raises(PolicyError, match=r"^p\.xml:5: malformed XML"):
        compile_policy(xml, "p.xml")


def test_unfilled_placeholder_is_refused_with_its_line() -> None:
    xml = "<!-- {not-a-placeholder} -->\n" + _policy('<set-backend-service backend-id="{backend}" />')
    with pytest.raises(PolicyError, match=r"^p\.xml:4: placeholder \{backend\}"):
        compile_policy(xml, "p.xml", placeholders={})
    filled = compile_policy(xml, "p.xml", placeholders={"backend": 'b"1'})
    assert filled.backend_ids == {'b"1'}


def test_reading_a_variable_no_policy_sets_is_refused() -> None:
    xml = _policy(
        '<set-header name="Authorization">\n<value>@("Bearer " + (string)context.Variables["tok"])</value>\n'
        "</set-header>"
    )
    with pytest.raises(PolicyError, match=r"p\.xml:4: <value> .*context\.Variables\['tok'\]"):
        compile_policy(xml, "p.xml")


def test_backend_section_must_forward() -> None:
    with pytest.raises(PolicyError, match=r"p\.xml:5: <backend> must contain <base />"):
        compile_policy(_policy("<base />", backend=""), "p.xml")


def test_set_header_actions() -> None:
    xml = _policy(
        '<set-header name="a" exists-action="override"><value>1</value></set-header>\n'
        '<set-header name="b" exists-action="skip"><value>new</value></set-header>\n'
        '<set-header name="c" exists-action="append"><value>2</value></set-header>\n'
        '<set-header name="d" exists-action="delete" />'
    )
    context = _context()
    context.outgoing_headers.extend({"a": "0", "b": "old", "c": "1", "d": "x"})
    run_inbound(compile_policy(xml, "p.xml"), context, "t")
    assert context.outgoing_headers.getall("a") == ["1"]
    assert context.outgoing_headers.getall("b") == ["old"]
    assert context.outgoing_headers.getall("c") == ["1", "2"]
    assert "d" not in context.outgoing_headers


def test_missing_matched_parameter_fails_the_request_not_the_start() -> None:
    dimension = _dimension("Deployment", '@(context.Request.MatchedParameters["deployment-id"])')
    xml = _policy(f"<azure-openai-emit-token-metric>{dimension}</azure-openai-emit-token-metric>")
    with pytest.raises(ExpressionError, match="deployment-id"):
        run_inbound(compile_policy(xml, "p.xml"), _context(parameters={}), "t")


@pytest.mark.parametrize(
    "text",
    [
        "@(context.Request.Url.Path)",
        "@(context.Request.Headers[&quot;x&quot;])",
        '@(context.Request.Headers.GetValueOrDefault("a", "b", "c"))',
        "@((int)context.Api.Id)",
        "@(context.Subscription.Id.ToUpper())",
        '@("a" "b")',
        '@("unterminated)',
        "@(context.Api.Id",
        "@(1 + 2)",
    ],
)
def test_outside_the_whitelist_is_a_syntax_error(text: str) -> None:
    with pytest.raises(ExpressionSyntaxError):
        compile_value(text.replace("&quot;", '"'))
