"""Parse and validate an APIM policy document into a typed plan, once, when the gateway starts.

Anything the stand-in cannot execute faithfully fails here with the file, line and element (or
expression), so a policy that runs locally is a policy whose every statement was understood.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from xml.sax.saxutils import escape

from lxml import etree
from multidict import MultiDict

from standins.gateway.context import MetricEmission, RequestContext
from standins.gateway.expressions import Expression, ExpressionSyntaxError, compile_value
from standins.gateway.operations import TEMPLATE_PARAMETERS

# Azure Monitor allows 10 dimension keys per metric and APIM keeps 5 for its own (Region,
# Service ID, ...), so the current docs allow at most 5 dimensions per emit policy.
MAX_DIMENSIONS = 5
AZURE_OPENAI_EMIT = "azure-openai-emit-token-metric"
LLM_EMIT = "llm-emit-token-metric"
DEFAULT_NAMESPACE = "API Management"

# Dimensions APIM fills by itself when a <dimension> has no value attribute.
_DEFAULT_DIMENSIONS: dict[str, Callable[[RequestContext], str]] = {
    "API ID": lambda c: c.api_id,
    "Operation ID": lambda c: c.operation_id,
    "Product ID": lambda c: c.product_id,
    "User ID": lambda c: c.user_id,
    "Subscription ID": lambda c: c.subscription.name,
    "Location": lambda c: c.gateway.location,
    "Gateway ID": lambda c: c.gateway.gateway_id,
}
_LLM_ONLY_DEFAULT_DIMENSIONS: dict[str, Callable[[RequestContext], str]] = {
    "Backend ID": lambda c: c.backend_id or "",
}

_SECTIONS: dict[str, frozenset[str]] = {
    "inbound": frozenset(
        {
            "base",
            "authentication-managed-identity",
            "set-header",
            "set-query-parameter",
            "set-backend-service",
            AZURE_OPENAI_EMIT,
            LLM_EMIT,
        }
    ),
    "backend": frozenset({"base"}),
    "outbound": frozenset({"base", "set-header"}),
    "on-error": frozenset({"base"}),
}
_PLACEHOLDER = re.compile(r"\{([A-Za-z][A-Za-z0-9_.-]*)\}")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


class PolicyError(ValueError):
    """The policy cannot run here; the message names the file, line and offending element."""


@dataclass(frozen=True)
class ManagedIdentityStep:
    resource: str
    output_variable: str | None
    ignore_error: bool
    client_id: str | None


HeaderAction = Literal["override", "skip", "append", "delete"]


@dataclass(frozen=True)
class SetHeaderStep:
    """<set-header> (target "header") or <set-query-parameter> (target "query"): the same syntax
    and exists-action rules (https://learn.microsoft.com/azure/api-management/set-header-policy,
    .../set-query-parameter-policy)."""

    name: str
    action: HeaderAction
    values: tuple[Expression, ...]
    target: Literal["header", "query"] = "header"

    def apply(self, headers: MultiDict[str], context: RequestContext) -> None:
        if self.action == "delete":
            headers.popall(self.name, None)
            return
        if self.action == "skip" and self.name in headers:
            return
        values = [value.text(context) for value in self.values]
        if self.action == "override":
            headers.popall(self.name, None)
        for value in values:
            headers.add(self.name, value)


@dataclass(frozen=True)
class SetBackendStep:
    backend_id: str


@dataclass(frozen=True)
class Dimension:
    name: str
    value: Callable[[RequestContext], str]


@dataclass(frozen=True)
class EmitTokenMetricStep:
    policy: str
    namespace: str
    dimensions: tuple[Dimension, ...]

    def evaluate(self, context: RequestContext) -> MetricEmission:
        return MetricEmission(self.policy, self.namespace, {d.name: d.value(context) for d in self.dimensions})


InboundStep = ManagedIdentityStep | SetHeaderStep | SetBackendStep | EmitTokenMetricStep


@dataclass(frozen=True)
class CompiledPolicy:
    source_name: str
    inbound: tuple[InboundStep, ...]
    outbound: tuple[SetHeaderStep, ...]

    @property
    def backend_ids(self) -> frozenset[str]:
        return frozenset(step.backend_id for step in self.inbound if isinstance(step, SetBackendStep))

    @property
    def emits_metrics(self) -> bool:
        return any(isinstance(step, EmitTokenMetricStep) for step in self.inbound)


class _Compiler:
    def __init__(self, source_name: str) -> None:
        self.source = source_name
        self.variables_set: set[str] = set()

    def error(self, element: etree._Element | None, problem: str, line: int | None = None) -> PolicyError:
        where = line if line is not None else (element.sourceline if element is not None else None)
        tag = f" <{element.tag}>" if element is not None else ""
        return PolicyError(f"{self.source}:{where or '?'}:{tag} {problem}")

    def attributes(
        self, element: etree._Element, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()
    ) -> dict[str, str]:
        values = {str(key): str(value) for key, value in element.attrib.items()}
        unknown = sorted(set(values) - set(required) - set(optional))
        if unknown:
            raise self.error(element, f"unsupported attribute(s) {', '.join(unknown)}")
        missing = [name for name in required if not values.get(name)]
        if missing:
            raise self.error(element, f"missing required attribute(s) {', '.join(missing)}")
        return values

    def children(self, element: etree._Element) -> list[etree._Element]:
        """Child elements; comments are skipped, stray text is an error."""
        if element.text and element.text.strip():
            raise self.error(element, f"unexpected text {element.text.strip()!r}")
        kids: list[etree._Element] = []
        for child in element:
            if child.tail and child.tail.strip():
                raise self.error(element, f"unexpected text {child.tail.strip()!r}", child.sourceline)
            if isinstance(child.tag, str):
                kids.append(child)
        return kids

    def expression(self, element: etree._Element, text: str, what: str) -> Expression:
        try:
            compiled = compile_value(text)
        except ExpressionSyntaxError as error:
            raise self.error(
                element,
                f"unsupported expression in {what}: {text.strip()!r} (column {error.column + 1}): {error}",
            ) from None
        for kind, name in sorted(compiled.reads):
            if kind == "variable" and name not in self.variables_set:
                raise self.error(
                    element, f"{what} reads context.Variables[{name!r}], which no earlier policy sets"
                )
            if kind == "parameter" and name not in TEMPLATE_PARAMETERS:
                raise self.error(
                    element,
                    f"{what} reads MatchedParameters[{name!r}]; the API's operation templates have "
                    f"{sorted(TEMPLATE_PARAMETERS)}",
                )
        return compiled

    def compile(self, root: etree._Element) -> CompiledPolicy:
        if root.tag != "policies":
            raise self.error(root, "the root element must be <policies>")
        seen: set[str] = set()
        inbound: list[InboundStep] = []
        outbound: list[SetHeaderStep] = []
        for section in self.children(root):
            name = str(section.tag)
            if name not in _SECTIONS:
                raise self.error(section, f"unsupported section; expected one of {sorted(_SECTIONS)}")
            if name in seen:
                raise self.error(section, "duplicate section")
            seen.add(name)
            self.attributes(section)
            statements = self.children(section)
            for statement in statements:
                if statement.tag not in _SECTIONS[name]:
                    raise self.error(
                        statement,
                        f"unsupported policy in <{name}> (the stand-in supports "
                        f"{', '.join(sorted(_SECTIONS[name]))})",
                    )
            if name == "backend" and not any(s.tag == "base" for s in statements):
                raise self.error(section, "must contain <base /> (the stand-in always forwards the request)")
            for statement in statements:
                step = self.statement(statement)
                if step is None:
                    continue
                if name == "inbound":
                    inbound.append(step)
                elif isinstance(step, SetHeaderStep):
                    outbound.append(step)
        return CompiledPolicy(self.source, tuple(inbound), tuple(outbound))

    def statement(self, element: etree._Element) -> InboundStep | None:
        tag = str(element.tag)
        if tag == "base":
            self.attributes(element)
            self.no_children(element)
            return None
        if tag == "set-backend-service":
            self.no_children(element)
            backend_id = self.attributes(element, required=("backend-id",))["backend-id"]
            if backend_id.startswith("@"):
                raise self.error(
                    element, f"policy expressions are not supported in backend-id: {backend_id!r}"
                )
            return SetBackendStep(backend_id)
        if tag == "authentication-managed-identity":
            return self.managed_identity(element)
        if tag in ("set-header", "set-query-parameter"):
            return self.set_header(element)
        return self.emit_token_metric(element)

    def no_children(self, element: etree._Element) -> None:
        kids = self.children(element)
        if kids:
            raise self.error(kids[0], f"unexpected child of <{element.tag}>")

    def managed_identity(self, element: etree._Element) -> ManagedIdentityStep:
        self.no_children(element)
        attrs = self.attributes(
            element,
            required=("resource",),
            optional=("client-id", "output-token-variable-name", "ignore-error"),
        )
        ignore_error = attrs.get("ignore-error", "false").lower()
        if ignore_error not in ("true", "false"):
            raise self.error(element, f"ignore-error must be true or false, not {attrs['ignore-error']!r}")
        variable = attrs.get("output-token-variable-name") or None
        if variable:
            self.variables_set.add(variable)
        return ManagedIdentityStep(
            attrs["resource"], variable, ignore_error == "true", attrs.get("client-id")
        )

    def set_header(self, element: etree._Element) -> SetHeaderStep:
        tag = str(element.tag)
        attrs = self.attributes(element, required=("name",), optional=("exists-action",))
        action = attrs.get("exists-action", "override")
        if action not in ("override", "skip", "append", "delete"):
            raise self.error(
                element, f"exists-action must be override, skip, append or delete, not {action!r}"
            )
        values: list[Expression] = []
        for child in self.children(element):
            if child.tag != "value":
                raise self.error(child, f"unsupported child of <{tag}>; expected <value>")
            self.attributes(child)
            if len(child):
                raise self.error(child, "<value> must hold text only")
            values.append(
                self.expression(child, child.text or "", f"<{tag} name={attrs['name']!r}> value")
            )
        if action != "delete" and not values:
            raise self.error(element, "needs at least one <value> unless exists-action is delete")
        target = "query" if tag == "set-query-parameter" else "header"
        return SetHeaderStep(attrs["name"], action, tuple(values), target)  # type: ignore[arg-type]

    def emit_token_metric(self, element: etree._Element) -> EmitTokenMetricStep:
        tag = str(element.tag)
        attrs = self.attributes(element, optional=("namespace",))
        namespace = attrs.get("namespace", DEFAULT_NAMESPACE)
        if namespace.startswith("@"):
            raise self.error(element, f"policy expressions are not allowed in namespace: {namespace!r}")
        defaults = dict(_DEFAULT_DIMENSIONS)
        if tag == LLM_EMIT:
            defaults.update(_LLM_ONLY_DEFAULT_DIMENSIONS)
        dimensions: list[Dimension] = []
        children = self.children(element)
        if not children:
            raise self.error(element, "needs at least one <dimension>")
        if len(children) > MAX_DIMENSIONS:
            raise self.error(element, f"has {len(children)} dimensions; APIM allows at most {MAX_DIMENSIONS}")
        for child in children:
            if child.tag != "dimension":
                raise self.error(child, f"unsupported child of <{tag}>; expected <dimension>")
            self.no_children(child)
            dim = self.attributes(child, required=("name",), optional=("value",))
            name = dim["name"]
            if any(existing.name == name for existing in dimensions):
                raise self.error(child, f"duplicate dimension {name!r}")
            if "value" in dim:
                compiled = self.expression(child, dim["value"], f"dimension {name!r}")
                dimensions.append(Dimension(name, compiled.text))
            elif name in defaults:
                dimensions.append(Dimension(name, defaults[name]))
            else:
                raise self.error(
                    child,
                    f"dimension {name!r} has no value and is not a default dimension of <{tag}> "
                    f"(defaults: {', '.join(defaults)})",
                )
        return EmitTokenMetricStep(tag, namespace, tuple(dimensions))


def substitute_placeholders(xml_text: str, placeholders: Mapping[str, str], source_name: str) -> str:
    """Fill ``{name}`` placeholders as the Bicep deployment does; an unfilled one is an error.

    XML comments are prose, not configuration, so braces inside them are left alone."""
    out: list[str] = []
    position = 0
    for comment in _COMMENT.finditer(xml_text):
        out.append(_fill(xml_text, position, comment.start(), placeholders, source_name))
        out.append(comment.group(0))
        position = comment.end()
    out.append(_fill(xml_text, position, len(xml_text), placeholders, source_name))
    return "".join(out)


def _fill(xml_text: str, start: int, end: int, placeholders: Mapping[str, str], source_name: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in placeholders:
            line = xml_text.count("\n", 0, start + match.start()) + 1
            raise PolicyError(
                f"{source_name}:{line}: placeholder {{{name}}} has no value in policy_placeholders"
            )
        return escape(placeholders[name], {'"': "&quot;", "'": "&apos;"})

    return _PLACEHOLDER.sub(replace, xml_text[start:end])


def compile_policy(
    xml_text: str, source_name: str, *, placeholders: Mapping[str, str] | None = None
) -> CompiledPolicy:
    """Compile a policy document (placeholders filled first) or raise PolicyError."""
    if placeholders is not None:
        xml_text = substitute_placeholders(xml_text, placeholders, source_name)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(xml_text.encode("utf-8"), parser)
    except etree.XMLSyntaxError as error:
        raise PolicyError(f"{source_name}:{error.lineno}: malformed XML: {error.msg}") from None
    return _Compiler(source_name).compile(root)
