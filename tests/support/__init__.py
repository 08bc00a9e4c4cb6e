"""Test support: real local services (moto S3 with IAM, PostgreSQL, a canned AWS error server).

Each module works outside pytest too (``running_moto_server()``, ``running_postgres()``,
``running_aws_errors_server()``); tests/conftest.py turns them into pytest fixtures.
"""
