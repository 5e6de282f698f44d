"""The policy expressions the stand-in supports: a tiny tokenizer and parser over a whitelist.

Values are either plain text or ``@( ... )`` single-statement expressions built from string
literals, ``+`` concatenation, ``??`` (null coalescing), ``(string)`` casts and these context reads:

    context.Subscription.Id        context.Subscription.Name      context.Request.IpAddress
    context.Api.Id                 context.Product.Id             context.User.Id
    context.Request.Headers.GetValueOrDefault("name"[, "default"])
    context.Request.MatchedParameters["name"]                     context.Variables["name"]
    context.Request.Body.As<JObject>(preserveContent: true).SelectToken("a.b")   (or ["a"]["b"])

Nothing is ever ``eval``-ed: an expression compiles to a closure over the request context, once,
when the gateway starts; anything else fails the start with the offending text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from standins.gateway.context import ExpressionError, RequestContext

Evaluator = Callable[[RequestContext], object]


class ExpressionSyntaxError(ValueError):
    """Unsupported or malformed expression; ``column`` is 0-based within the value text."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class Expression:
    source: str
    evaluate: Evaluator
    # ("variable" | "parameter", name) pairs this expression reads, checked against the policy.
    reads: frozenset[tuple[str, str]] = frozenset()

    def text(self, context: RequestContext) -> str:
        value = self.evaluate(context)
        return "" if value is None else str(value)


SUPPORTED_FORMS = (
    'string literals "..."',
    "context.Subscription.Id",
    "context.Subscription.Name",
    "context.Request.IpAddress",
    "context.Api.Id",
    "context.Product.Id",
    "context.User.Id",
    'context.Request.Headers.GetValueOrDefault("name"[, "default"])',
    'context.Request.MatchedParameters["name"]',
    'context.Variables["name"]',
    'context.Request.Body.As<JObject>(preserveContent: true).SelectToken("path") or ["name"]',
    '"+" concatenation, "??" and (string) casts',
)
# Body.As<T>() consumes the body unless preserveContent is true: the backend would get an empty
# request (https://learn.microsoft.com/azure/api-management/api-management-policy-expressions,
# "context.Request.Body.As<T>").
_BODY_PATH = "context.Request.Body.As"

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>\?\?|[.()\[\],+<>:])
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", '"': '"', "\\": "\\", "'": "'"}


@dataclass(frozen=True)
class _Token:
    kind: str  # "string" | "ident" | "punct" | "end"
    text: str
    column: int


def _unescape(literal: str, column: int) -> str:
    out: list[str] = []
    chars = iter(enumerate(literal[1:-1]))
    for offset, char in chars:
        if char != "\\":
            out.append(char)
            continue
        _, escaped = next(chars)
        if escaped not in _ESCAPES:
            raise ExpressionSyntaxError(
                f"unsupported escape \\{escaped} in string literal", column + offset + 1
            )
        out.append(_ESCAPES[escaped])
    return "".join(out)


def _tokenize(text: str, offset: int) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            column = offset + len(text[:position]) + (len(text[position:]) - len(text[position:].lstrip()))
            raise ExpressionSyntaxError(f"unexpected {text[position:].lstrip()[:1]!r}", column)
        kind = match.lastgroup
        tokens.append(_Token(kind, match.group(kind), offset + match.start(kind)))
        position = match.end()
    tokens.append(_Token("end", "", offset + len(text)))
    return tokens


@dataclass(frozen=True)
class _Segment:
    kind: str  # "name" | "index" | "call"
    name: str = ""
    args: tuple[str, ...] = ()


def _header_reader(args: Sequence[str]) -> Evaluator:
    header = args[0]
    default = args[1] if len(args) == 2 else None

    def read(context: RequestContext) -> object:
        values = context.request_headers.getall(header, [])
        # APIM's header dictionary joins repeated headers with commas.
        return ",".join(values) if values else default

    return read


def _parameter_reader(name: str) -> Evaluator:
    def read(context: RequestContext) -> object:
        try:
            return context.matched_parameters[name]
        except KeyError:
            raise ExpressionError(f"operation {context.operation_id!r} has no parameter {name!r}") from None

    return read


def _variable_reader(name: str) -> Evaluator:
    def read(context: RequestContext) -> object:
        try:
            return context.variables[name]
        except KeyError:
            raise ExpressionError(f"context variable {name!r} is not set") from None

    return read


class _JsonToken:
    """A JSON value read from the body, kept apart from strings so ``(string)`` converts it the
    way Newtonsoft's explicit JToken-to-string conversion does."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return str(_as_string(self))


def _as_string(value: object) -> object:
    """C# ``(string)value``: JSON booleans become "True"/"False" (Boolean.ToString()), numbers and
    strings their text; an object or array cannot be cast (ArgumentException: the request fails)."""
    if not isinstance(value, _JsonToken):
        return None if value is None else str(value)
    inner = value.value
    if inner is None:
        return None
    if isinstance(inner, bool):
        return "True" if inner else "False"
    if isinstance(inner, (dict, list)):
        raise ExpressionError(f"cannot convert a JSON {type(inner).__name__} to string")
    return str(inner)


def _body_reader(path: tuple[str, ...]) -> Evaluator:
    def read(context: RequestContext) -> object:
        value: object = context.body_as_jobject()
        for name in path:
            # JObject["missing"] and SelectToken("missing") are null, not errors.
            value = value.get(name) if isinstance(value, dict) else None
            if value is None:
                return None
        return _JsonToken(value)

    return read


_PROPERTIES: dict[str, Evaluator] = {
    "context.Subscription.Id": lambda c: c.subscription.name,
    "context.Subscription.Name": lambda c: c.subscription.title,
    "context.Request.IpAddress": lambda c: c.ip_address,
    "context.Api.Id": lambda c: c.api_id,
    "context.Product.Id": lambda c: c.product_id,
    "context.User.Id": lambda c: c.user_id,
}


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._index = 0
        self.reads: set[tuple[str, str]] = set()

    def _peek(self, ahead: int = 0) -> _Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _next(self) -> _Token:
        token = self._peek()
        self._index += 1
        return token

    def _expect(self, kind: str, text: str | None = None) -> _Token:
        token = self._next()
        if token.kind != kind or (text is not None and token.text != text):
            wanted = repr(text) if text else kind
            raise ExpressionSyntaxError(f"expected {wanted}, found {token.text or 'end'!r}", token.column)
        return token

    def parse(self) -> Evaluator:
        evaluator = self._coalesce()
        token = self._peek()
        if token.kind != "end":
            raise ExpressionSyntaxError(
                f"unsupported {token.text!r} after a complete expression", token.column
            )
        return evaluator

    def _coalesce(self) -> Evaluator:
        """``a ?? b``: b when a is null (lower precedence than ``+``, right-associative, as in C#)."""
        left = self._concat()
        if not (self._peek().text == "??" and self._peek().kind == "punct"):
            return left
        self._next()
        right = self._coalesce()
        return lambda c: right(c) if (value := left(c)) is None else value

    def _concat(self) -> Evaluator:
        terms = [self._term()]
        while self._peek().text == "+" and self._peek().kind == "punct":
            self._next()
            terms.append(self._term())
        if len(terms) == 1:
            return terms[0]
        parts = tuple(terms)
        # C# string concatenation treats null as "".
        return lambda c: "".join("" if value is None else str(value) for value in (part(c) for part in parts))

    def _term(self) -> Evaluator:
        token = self._peek()
        if token.text == "(" and self._peek(1).kind == "ident" and self._peek(2).text == ")":
            cast = self._peek(1)
            if cast.text != "string":
                raise ExpressionSyntaxError(f"unsupported cast ({cast.text}); only (string)", cast.column)
            self._index += 3
            inner = self._term()
            return lambda c: _as_string(inner(c))
        if token.text == "(" and token.kind == "punct":
            self._next()
            inner = self._coalesce()
            self._expect("punct", ")")
            return inner
        if token.kind == "string":
            self._next()
            literal = _unescape(token.text, token.column)
            return lambda _c: literal
        if token.kind == "ident":
            return self._member_chain()
        raise ExpressionSyntaxError(f"unexpected {token.text or 'end'!r}", token.column)

    def _member_chain(self) -> Evaluator:
        start = self._next()
        segments = [_Segment("name", start.text)]
        while True:
            token = self._peek()
            if token.text == "<" and ".".join(s.name for s in segments) == _BODY_PATH:
                return self._body_chain(token.column)
            if token.text == "." and token.kind == "punct":
                self._next()
                segments.append(_Segment("name", self._expect("ident").text))
            elif token.text == "[" and token.kind == "punct":
                segments.append(_Segment("index", args=(self._index_key(),)))
            elif token.text == "(" and token.kind == "punct":
                self._next()
                segments.append(_Segment("call", args=self._call_args()))
            else:
                break
        return self._resolve(segments, start.column)

    def _index_key(self) -> str:
        """``["name"]``: a string-literal indexer, the opening bracket not yet consumed."""
        self._expect("punct", "[")
        key = self._expect("string")
        self._expect("punct", "]")
        return _unescape(key.text, key.column)

    def _body_chain(self, column: int) -> Evaluator:
        """``As<JObject>(preserveContent: true)`` then JSON accessors: ``.SelectToken("a.b")`` or ``["a"]``."""
        self._expect("punct", "<")
        target = self._expect("ident")
        if target.text != "JObject":
            raise ExpressionSyntaxError(f"unsupported Body.As<{target.text}>; only As<JObject>", target.column)
        self._expect("punct", ">")
        self._expect("punct", "(")
        if self._peek().text == "preserveContent" and self._peek(1).text == ":":
            self._index += 2
        flag = self._next()
        if flag.text != ")":
            self._expect("punct", ")")
        if flag.text != "true":
            raise ExpressionSyntaxError(
                "Body.As<JObject>() without preserveContent: true consumes the body, and the backend "
                "would receive an empty request",
                flag.column,
            )
        path: list[str] = []
        while True:
            token = self._peek()
            if token.text == "[" and token.kind == "punct":
                path.append(self._index_key())
            elif token.text == "." and self._peek(1).text == "SelectToken":
                self._index += 2
                self._expect("punct", "(")
                selector = self._expect("string")
                self._expect("punct", ")")
                text = _unescape(selector.text, selector.column)
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", text):
                    raise ExpressionSyntaxError(
                        f"unsupported SelectToken path {text!r}; only dotted property names", selector.column
                    )
                path.extend(text.split("."))
            else:
                break
        if not path:
            raise ExpressionSyntaxError("Body.As<JObject>() must be followed by a property access", column)
        return _body_reader(tuple(path))

    def _call_args(self) -> tuple[str, ...]:
        args: list[str] = []
        if self._peek().text == ")":
            self._next()
            return ()
        while True:
            token = self._expect("string")
            args.append(_unescape(token.text, token.column))
            separator = self._expect("punct")
            if separator.text == ")":
                return tuple(args)
            if separator.text != ",":
                raise ExpressionSyntaxError(
                    f"expected ',' or ')', found {separator.text!r}", separator.column
                )

    def _resolve(self, segments: list[_Segment], column: int) -> Evaluator:
        names = [segment.name for segment in segments if segment.kind == "name"]
        path = ".".join(names)
        shape = tuple(segment.kind for segment in segments)
        if all(kind == "name" for kind in shape) and path in _PROPERTIES:
            return _PROPERTIES[path]
        last = segments[-1]
        if (
            path == "context.Request.Headers.GetValueOrDefault"
            and shape[-1] == "call"
            and shape.count("call") == 1
        ):
            if len(last.args) in (1, 2) and segments[-2].kind == "name":
                return _header_reader(last.args)
            raise ExpressionSyntaxError(
                "GetValueOrDefault takes a header name and an optional default", column
            )
        if shape[-1] == "index" and shape.count("index") == 1 and shape.count("call") == 0:
            if path == "context.Request.MatchedParameters":
                self.reads.add(("parameter", last.args[0]))
                return _parameter_reader(last.args[0])
            if path == "context.Variables":
                self.reads.add(("variable", last.args[0]))
                return _variable_reader(last.args[0])
        raise ExpressionSyntaxError(
            f"unsupported context access {_render(segments)}; supported: {'; '.join(SUPPORTED_FORMS)}", column
        )


def _render(segments: list[_Segment]) -> str:
    out = ""
    for segment in segments:
        if segment.kind == "name":
            out += ("." if out else "") + segment.name
        elif segment.kind == "index":
            out += f'["{segment.args[0]}"]'
        else:
            out += "(" + ", ".join(f'"{arg}"' for arg in segment.args) + ")"
    return out


def compile_value(text: str) -> Expression:
    """A policy value: ``@( ... )`` is an expression, ``@{ ... }`` is refused, anything else is literal."""
    stripped = text.strip()
    if stripped.startswith("@{"):
        raise ExpressionSyntaxError("multi-statement expressions @{ ... } are not supported", text.find("@{"))
    if not stripped.startswith("@("):
        return Expression(text, lambda _c: text)
    if not stripped.endswith(")"):
        raise ExpressionSyntaxError("an @( expression must end with ')'", len(text.rstrip()) - 1)
    body_offset = text.find("@(") + 2
    body = stripped[2:-1]
    parser = _Parser(_tokenize(body, body_offset))
    evaluator = parser.parse()
    return Expression(text, evaluator, frozenset(parser.reads))
