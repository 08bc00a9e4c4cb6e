"""Test before saving: the connection test on the destination form's values.

The form is posted as it is (FormData, with its CSRF token), turned into the create or
update body a save would send (`destination_bodies`), checked by the same rules, and
written to with the test object; nothing is stored, and the saved destination's status
is left alone. Secrets typed are used for this one request and never sent back.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from s3dest.dashboard.pages.destination_bodies import create_body, update_body
from s3dest.dashboard.pages.destinations import checklist
from s3dest.dashboard.session import Session
from s3dest.dashboard.web import (
    PageRoute,
    SessionDep,
    app_state,
    csrf_form,
    dashboard,
    form_text,
)
from s3dest.destinations import drafts, service
from s3dest.destinations.schemas import DestinationPublic, parse_create, parse_update
from s3dest.errors import Conflict, InvalidInput
from s3dest.store.destinations import DestinationRow

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _test(
    request: Request, session: Session, form: Any, ref: str | None
) -> tuple[DestinationRow, service.TestResult]:
    state = app_state(request)
    body = parse_update(update_body(form)) if ref else parse_create(create_body(form))
    return drafts.test_draft(
        state.engine,
        state.box,
        project_id=session.project_id,
        body=body,
        ref=ref,
        actor=session.actor,
    )


async def run_draft_test(
    request: Request, session: Session, form: Any, ref: str | None
) -> tuple[DestinationRow, service.TestResult]:
    """The draft's test, on the connection tests' threads and within their bounds
    (TooBusy beyond). Raises InvalidInput when the values would not be saved either."""
    fair = app_state(request).fair
    return await fair.connection_test(session.project_id, _test, request, session, form, ref)


def result_html(
    request: Request, row: DestinationRow, result: service.TestResult, *, new: bool
) -> str:
    return (
        dashboard(request)
        .env.get_template("_test_result.html")
        .render(
            result=result,
            destination=DestinationPublic.from_row(row),
            checklist=checklist(row),
            draft=True,
            draft_new=new,
        )
    )


@router.post("/ui/api/draft-test")
async def draft_test_json(request: Request, session: SessionDep) -> Response:
    """The form's "Test these settings" button (JavaScript): the result as HTML to show."""
    form = await csrf_form(request, session)
    ref = form_text(form, "destinationRef").strip() or None
    try:
        row, result = await run_draft_test(request, session, form, ref)  # TooBusy: 429
    except (InvalidInput, Conflict) as exc:
        fields = exc.fields if isinstance(exc, InvalidInput) else {"name": exc.message}
        return JSONResponse(
            {"ok": False, "invalid": True, "fields": fields, "message": exc.message},
            status_code=422,
        )
    return JSONResponse(
        {**result.as_dict(), "html": result_html(request, row, result, new=ref is None)}
    )
