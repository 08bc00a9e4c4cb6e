"""Query parameters, strictly: an unknown one is a 422 naming it (a typo such as
``?stat=parked`` would otherwise list every state), and FastAPI's own refusals of a
parameter say which it is and its allowed values, not pydantic's words."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant

from s3dest.errors import InvalidInput

_SHOWN_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,64}")


def _query_params(request: Request) -> list[Any]:
    """The route's query parameters, its dependencies' included (FastAPI's ModelFields)."""
    route = request.scope.get("route")
    stack: list[Dependant] = [getattr(route, "dependant", None) or Dependant()]
    params: list[Any] = []
    while stack:
        dependant = stack.pop()
        params.extend(dependant.query_params)
        stack.extend(dependant.dependencies)
    return params


def _declared(request: Request) -> list[str]:
    return list(dict.fromkeys(param.alias for param in _query_params(request)))


def strict_query(request: Request) -> None:
    """Refuse query parameters the route does not declare (422, each named)."""
    declared = _declared(request)
    unknown = [name for name in request.query_params if name not in declared]
    if not unknown:
        return
    takes = ", ".join(declared) if declared else "none"
    shown = [name if _SHOWN_NAME.fullmatch(name) else "query" for name in unknown]
    raise InvalidInput(
        f"unknown query parameter {shown[0]!r}; this route takes: {takes}",
        {name: f"not a parameter of this route; it takes: {takes}" for name in shown},
    )


StrictQuery = Depends(strict_query)


def _bounds(request: Request, name: str) -> tuple[Any, Any]:
    for param in _query_params(request):
        if param.alias == name:
            ge = le = None
            for meta in param.field_info.metadata:
                ge = getattr(meta, "ge", ge)
                le = getattr(meta, "le", le)
            return ge, le
    return None, None


def parameter_problems(request: Request, errors: list[Mapping[str, Any]]) -> InvalidInput | None:
    """One `InvalidInput` for FastAPI's refusals of query, header or path parameters (None
    when the errors are about the body only)."""
    fields: dict[str, str] = {}
    for error in errors:
        loc = list(error.get("loc", ()))
        if len(loc) < 2 or loc[0] not in ("query", "header", "path"):
            continue
        name = str(loc[-1])
        kind = str(error.get("type", ""))
        ctx = error.get("ctx") or {}
        if kind in ("less_than_equal", "greater_than_equal", "int_parsing", "int_type"):
            ge, le = _bounds(request, name)
            if ge is not None and le is not None:
                message = f"must be an integer from {ge} to {le}"
            elif kind == "less_than_equal":
                message = f"must be at most {ctx.get('le')}"
            elif kind == "greater_than_equal":
                message = f"must be at least {ctx.get('ge')}"
            else:
                message = "must be an integer"
        elif kind == "literal_error" or kind == "enum":
            message = f"must be one of {ctx.get('expected', 'the documented values')}"
        elif kind == "missing":
            message = "is required"
        elif kind in ("bool_parsing", "bool_type"):
            message = "must be true or false"
        else:
            message = str(error.get("msg", "is invalid"))
        fields[name] = f"{fields[name]}; {message}" if name in fields else message
    if not fields:
        return None
    first, problem = next(iter(fields.items()))
    more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
    return InvalidInput(f"invalid parameter {first}: {problem}{more}", fields)
