"""/metrics per tenant (issue 13 item 2): a project's key sees only its own series, with its
destinations' names; no other project's ids, names or queue depth. The operator token sees
everything; a wrong operator token is a 401. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.builders import create_destination, message
from tests.support.checks import metric
from tests.support.moto_server import S3Server
from tests.support.polling import wait_for_state, wait_until
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve

OPERATOR = "op-token-for-tests-0123456789abcdef"  # made up


def scrape(server: S3destProcess, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.url}/metrics", headers=headers, timeout=30)


def test_a_projects_key_sees_only_its_own_series(
    s3dest_env: S3destEnv, s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    s3dest_env.extra["S3DEST_OPERATOR_TOKEN"] = OPERATOR
    server = serve(s3dest_env, tmp_path)
    try:
        alpha_id, alpha_key = s3dest_env.create_project("alpha")
        bravo_id, bravo_key = s3dest_env.create_project("bravo")
        with server.client(alpha_key) as alpha, server.client(bravo_key) as bravo:
            mine = create_destination(alpha, s3_server, bucket, "alpha-orders")
            # Bravo's bucket does not exist: its message stays held, in the queue.
            theirs = create_destination(bravo, s3_server, "no-such-bucket-xyz", "bravo-leads")
            sent = alpha.send(message(1, destination="alpha-orders"))["eventId"]
            held = bravo.send(message(2, destination="bravo-leads"))["eventId"]
            wait_for_state(alpha, sent, "delivered")
            wait_until(
                lambda: bravo.message(held)["state"] in ("held", "retrying"), 60, "bravo held"
            )

        seen = scrape(server, alpha_key)
        assert seen.status_code == 200, seen.text
        text = seen.text
        labels = {"destination": mine["id"], "destination_name": "alpha-orders"}
        labels["project"] = alpha_id
        assert metric(text, "s3dest_messages_accepted_total", **labels) == 1
        assert metric(text, "s3dest_messages_delivered_total", **labels) == 1
        for foreign in (theirs["id"], "bravo-leads", bravo_id):
            assert foreign not in text, f"alpha's /metrics shows {foreign}"
        # The queue depth alpha sees is its own (empty), not bravo's held message.
        assert metric(text, "s3dest_queue_depth") == 0

        other = scrape(server, bravo_key).text
        assert mine["id"] not in other and "alpha-orders" not in other and alpha_id not in other
        assert metric(other, "s3dest_queue_depth") == 1

        everything = scrape(server, OPERATOR)
        assert everything.status_code == 200, everything.text
        for name in (mine["id"], theirs["id"], "alpha-orders", "bravo-leads"):
            assert name in everything.text
        assert metric(everything.text, "s3dest_queue_depth") == 1

        assert scrape(server, OPERATOR + "x").status_code == 401
        assert scrape(server, OPERATOR[:-1]).status_code == 401
        assert scrape(server, None).status_code == 401
    finally:
        server.kill()


def test_without_an_operator_token_no_token_sees_everything(
    s3dest_server: S3destProcess, s3dest_env: S3destEnv
) -> None:
    # Unset (the default), the operator path is closed: an empty bearer is not a match.
    assert scrape(s3dest_server, "").status_code == 401
    assert scrape(s3dest_server, "None").status_code == 401
    _, key = s3dest_env.create_project("alpha")
    assert scrape(s3dest_server, key).status_code == 200
