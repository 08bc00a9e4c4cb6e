"""The public surface: `s3dest.__all__` names the client, the message models, key
templates and the whole exception tree, and `import s3dest` stays cheap."""

from __future__ import annotations

import inspect
import subprocess
import sys

import s3dest
from s3dest import errors


def test_every_public_name_resolves() -> None:
    for name in s3dest.__all__:
        assert getattr(s3dest, name) is not None, name


def test_every_error_is_public_and_rooted_at_s3dest_error() -> None:
    classes = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, Exception)
    }
    assert classes <= set(s3dest.__all__)
    for name in classes:
        assert issubclass(getattr(s3dest, name), s3dest.S3destError), name
        assert name in (errors.__doc__ or ""), f"{name} is not drawn in errors' tree"


def test_importing_s3dest_loads_neither_httpx_nor_pydantic() -> None:
    code = "import sys, s3dest; print(sorted({'httpx', 'pydantic'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
