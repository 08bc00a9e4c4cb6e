"""The dashboard's Batching fieldset (SPEC §9) over plain HTTP, as the form posts it: off by
default, on with its four values, off again; a wrong value shown next to its input, the
form kept. What was saved is read back through the REST API. SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import httpx
from tests.support.builders import EXAMPLE_ACCESS_KEY_ID, EXAMPLE_SECRET
from tests.support.dashboard import post_form, sign_in
from tests.support.s3dest_server import S3destProcess

from s3dest.batching import BatchSettings

DEFAULTS = BatchSettings().to_api()
FIELDS = {
    "bucket": "ampersand-integration-bucket",
    "region": "us-west-2",
    "storageClass": "STANDARD",
    "writeMode": "overwrite",
    "enabled": "on",
}


def _checked(html: str, name: str) -> bool:
    tag = re.search(rf'<input type="checkbox" id="{re.escape(name)}"[^>]*>', html)
    assert tag, f"no checkbox {name}"
    return " checked" in tag.group(0)


def _value(html: str, name: str) -> str:
    tag = re.search(
        rf'<input [^>]*id="{re.escape(name)}" name="{re.escape(name)}" value="([^"]*)"', html
    )
    assert tag, f"no input {name}"
    return tag.group(1)


def test_the_batching_fieldset(s3dest_server: S3destProcess, project: tuple[str, str]) -> None:
    _, key = project
    api = httpx.Client(
        base_url=s3dest_server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    page = sign_in(s3dest_server.url, key)

    def batch_of(name: str) -> Any:
        response = api.get(f"/v1/destinations/{name}")
        assert response.status_code == 200, response.text
        return response.json()["batch"]

    with api, contextlib.closing(page):  # sign_in opened `page`
        new = page.get("/destinations/new").text
        assert "<legend>Batching</legend>" in new
        assert not _checked(new, "batch")  # off by default, the defaults shown to tick
        assert _value(new, "batch.maxMessages") == "1000"
        assert _value(new, "batch.maxSeconds") == "60"
        assert "from 1 to 10,000 (default 1,000)" in new

        secrets = {"accessKeyId": EXAMPLE_ACCESS_KEY_ID, "secretAccessKey": EXAMPLE_SECRET}
        # Unticked, the values are not sent: no batching.
        plain = post_form(
            page,
            "/destinations/new",
            "/destinations/new",
            name="plain",
            **FIELDS,
            **secrets,
            **{"batch.maxMessages": "5"},
        )
        assert plain.status_code == 303, plain.text
        assert batch_of("plain") is None

        made = post_form(
            page,
            "/destinations/new",
            "/destinations/new",
            name="lake",
            **FIELDS,
            **secrets,
            batch="on",
            **{
                "batch.maxMessages": "5,000",
                "batch.maxBytes": "",  # blank: the default
                "batch.maxSeconds": "2.5",
                "batch.compression": "zstd",
            },
        )
        assert made.status_code == 303, made.text
        want = {**DEFAULTS, "maxMessages": 5000, "maxSeconds": 2.5, "compression": "zstd"}
        assert batch_of("lake") == want

        listing = page.get("/destinations").text
        assert "zstd-compressed JSON Lines objects of up to 5,000 messages" in listing
        assert re.search(r"<dd data-batch>off", listing)  # plain's

        edit = page.get("/destinations/lake/edit").text
        assert _checked(edit, "batch")
        assert (_value(edit, "batch.maxMessages"), _value(edit, "batch.maxSeconds")) == (
            "5000",
            "2.5",
        )
        assert re.search(r'<option value="zstd" selected>', edit)

        # A wrong value: 422, named next to its input and in the summary; nothing saved, the
        # form as it was posted.
        for typed, words in (("0", "0 is outside that range"), ("lots", "not a whole number")):
            refused = post_form(
                page,
                "/destinations/lake/edit",
                "/destinations/lake/edit",
                name="lake",
                **FIELDS,
                batch="on",
                **{"batch.maxMessages": typed, "batch.maxSeconds": "2.5"},
            )
            assert refused.status_code == 422, refused.text
            html = refused.text
            error = re.search(r'<p class="field-error" id="batch.maxMessages-error">([^<]*)', html)
            assert error and words in error.group(1), html
            assert '<a href="#batch.maxMessages">batch.maxMessages</a>' in html
            assert 'aria-invalid="true"' in html
            assert _checked(html, "batch") and _value(html, "batch.maxMessages") == typed
            assert batch_of("lake") == want

        # Unticked on an edit: batching off.
        off = post_form(
            page, "/destinations/lake/edit", "/destinations/lake/edit", name="lake", **FIELDS
        )
        assert off.status_code == 303, off.text
        assert batch_of("lake") is None
        assert not _checked(page.get("/destinations/lake/edit").text, "batch")
