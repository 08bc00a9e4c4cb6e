"""Notifications (SPEC §4): a project's webhook endpoints are told when a destination turns
failing (with the diagnosis) or works again, and when a message is parked (with the
reason).

- `s3dest.store.outbox` writes the events, in the transaction of each transition;
- `signing`: Standard Webhooks signatures (the `standardwebhooks` library) and secrets;
- `sender`: one POST under the endpoint policy (SPEC §7), to the address that was checked;
- `dispatch`: the outbox's sender loop, with retries and backoff;
- `service`: create, list, delete and test endpoints (REST API and dashboard).
"""
