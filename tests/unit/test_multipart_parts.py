"""How a large body is cut into multipart parts (s3/multipart.body_parts)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from s3dest.s3.multipart import body_parts


@given(st.lists(st.binary(max_size=40), max_size=12), st.integers(min_value=1, max_value=50))
def test_streamed_chunks_become_full_parts_and_one_shorter_last(
    chunks: list[bytes], size: int
) -> None:
    parts = list(body_parts(iter(chunks), size))
    assert b"".join(parts) == b"".join(chunks)
    assert parts, "an empty body is still one (empty) part"
    assert all(len(p) == size for p in parts[:-1])
    assert 0 < len(parts[-1]) <= size or parts == [b""]


def test_bytes_and_files_are_cut_the_same_way(tmp_path: Path) -> None:
    body = bytes(range(256)) * 5
    path = tmp_path / "body"
    path.write_bytes(body)
    assert list(body_parts(body, 300)) == list(body_parts(path, 300))
    assert [len(p) for p in body_parts(body, 300)] == [300, 300, 300, 300, 80]
    assert list(body_parts(b"", 300)) == [b""]
