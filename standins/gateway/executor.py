"""Run a compiled policy's statements against one request."""

from __future__ import annotations

from multidict import CIMultiDict

from standins.gateway.context import RequestContext
from standins.gateway.policy import (
    CompiledPolicy,
    EmitTokenMetricStep,
    ManagedIdentityStep,
    SetBackendStep,
    SetHeaderStep,
)


def run_inbound(policy: CompiledPolicy, context: RequestContext, managed_identity_token: str) -> None:
    """Statements in document order; may raise ExpressionError (APIM then answers 500)."""
    for step in policy.inbound:
        if isinstance(step, SetHeaderStep):
            step.apply(context.outgoing_query if step.target == "query" else context.outgoing_headers, context)
        elif isinstance(step, SetBackendStep):
            context.backend_id = step.backend_id
        elif isinstance(step, ManagedIdentityStep):
            # Without an output variable APIM sets the Authorization header itself.
            if step.output_variable:
                context.variables[step.output_variable] = managed_identity_token
            else:
                context.outgoing_headers["Authorization"] = f"Bearer {managed_identity_token}"
        elif isinstance(step, EmitTokenMetricStep):
            # Dimensions read only the request, so they are fixed before forwarding.
            context.emissions.append(step.evaluate(context))


def run_outbound(policy: CompiledPolicy, context: RequestContext, response_headers: CIMultiDict[str]) -> None:
    for step in policy.outbound:
        step.apply(response_headers, context)
