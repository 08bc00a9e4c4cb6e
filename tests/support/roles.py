"""s3dest's own identity and customers' roles on moto, for role destinations (SPEC §8).

    extra = identity_env(s3_server, sts_url)   # S3DEST_* and AWS_* for `S3destEnv(extra=...)`
    create_role(s3_server, name, created["trustPolicy"], created["iamPolicy"])

s3dest's identity is a moto IAM user allowed only sts:AssumeRole, given to the server
through the standard chain's environment variables, and nothing else of the chain
(`NO_CHAIN`): no profile file, no instance metadata.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.moto_server import Credentials, S3Server

__all__ = ["NO_CHAIN", "create_role", "identity_env", "identity_user"]

NO_CHAIN = {
    "AWS_CONFIG_FILE": "/nonexistent/s3dest-test-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/s3dest-test-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def identity_user(s3: S3Server) -> tuple[Credentials, str]:
    """(keys, ARN) of a new IAM user allowed sts:AssumeRole and nothing else."""
    me = s3.user_with_policy(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
        }
    )
    arn: str = s3.client("sts", credentials=me).get_caller_identity()["Arn"]
    return me, arn


def identity_env(s3: S3Server, sts_url: str, *, fresh_seconds: int) -> tuple[dict[str, str], str]:
    """(environment, identity ARN) of a new s3dest identity: STS at `sts_url`, sessions
    of 900 s (STS's minimum) renewed `fresh_seconds` after they begin."""
    me, arn = identity_user(s3)
    env = {
        **NO_CHAIN,
        "AWS_ACCESS_KEY_ID": me.access_key_id,
        "AWS_SECRET_ACCESS_KEY": me.secret_access_key,
        "S3DEST_STS_ENDPOINT_URL": sts_url,
        "S3DEST_ROLE_SESSION_SECONDS": "900",
        "S3DEST_ROLE_REFRESH_BEFORE_SECONDS": str(900 - fresh_seconds),
    }
    return env, arn


def create_role(
    s3: S3Server, name: str, trust: dict[str, Any], permissions: dict[str, Any]
) -> None:
    iam = s3.client("iam")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=name, PolicyName="write", PolicyDocument=json.dumps(permissions))
