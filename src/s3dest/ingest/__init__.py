"""Ingest: accept messages, check them and make them durable before answering.

    stream     a batch body as a stream of messages (ijson events, one message at a time),
               and the parser's adaptive reads (linear on one long string)
    bodies     large bodies streamed in bounded memory (ijson in, compact JSON out)
    envelope   the checks that do not need `result` (projectId, routing, metadata) and
               the queue row of an accepted message
    normalise  one message of ordinary size: validated, normalised, shaped
    large      one large message, streamed from a spooled body
    service    `Ingestor`: a batch all-or-nothing, checked as it streams, its rows spilled
               to disk, committed in one transaction before the 202
    reader     the HTTP body of ``POST /v1/messages`` (spooled when large)
    put        `s3dest put`: one message file straight to a bucket, without the queue

Nothing is imported here, so that `s3dest put` does not load the database layer.
"""
