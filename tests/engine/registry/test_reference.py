from __future__ import annotations

import pytest

from engine.errors import UsageError
from engine.registry.reference import InvalidReference, Reference

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", None, None),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        ("foo/bar", "docker.io", "foo/bar", None, None),
        ("index.docker.io/foo/bar:x", "docker.io", "foo/bar", "x", None),
        ("registry-1.docker.io/alpine", "docker.io", "library/alpine", None, None),
        ("docker.io/alpine", "docker.io", "library/alpine", None, None),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/app:v1", "localhost:5000", "app", "v1", None),
        ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c", None, None),
        ("ghcr.io/org/img@" + DIGEST, "ghcr.io", "org/img", None, DIGEST),
        ("ghcr.io/org/img:v2@" + DIGEST, "ghcr.io", "org/img", "v2", DIGEST),
        ("Registry.Example.com/app", "Registry.Example.com", "app", None, None),
        ("a__b/c-d--e.f_g", "docker.io", "a__b/c-d--e.f_g", None, None),
        ("[::1]:5000/app", "[::1]:5000", "app", None, None),
    ],
)
def test_parse_normalises_like_docker(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("Busybox", "must be lowercase"),
        ("foo/Bar", "must be lowercase"),
        ("foo:bad tag", "malformed"),
        ("foo:-x", "malformed tag"),
        ("foo@sha256:abc", "malformed digest"),
        ("foo@sha256:" + "A" * 64, "sha256 digest"),
        ("foo@nodigest", "malformed digest"),
        ("https://ghcr.io/a", "no URL scheme"),
        ("ghcr.io/", "missing repository"),
        ("foo//bar", "malformed repository"),
        ("a/" + "b" * 260, "longer than 255"),
    ],
)
def test_invalid_reference_one_line_error_names_it(text: str, why: str) -> None:
    with pytest.raises(InvalidReference) as err:
        Reference.parse(text)
    message = str(err.value)
    assert why in message
    assert "\n" not in message
    assert repr(text.strip()) in message
    assert isinstance(err.value, UsageError)


def test_derived_forms() -> None:
    ref = Reference.parse("busybox")
    assert str(ref) == "docker.io/library/busybox:latest"
    assert ref.familiar == "busybox"
    assert ref.api_host == "registry-1.docker.io"
    assert ref.identifier == "latest"
    assert ref.scope("pull,push") == "repository:library/busybox:pull,push"
    pinned = Reference.parse("ghcr.io/a/b:1@" + DIGEST)
    assert pinned.identifier == DIGEST
    assert str(pinned) == f"ghcr.io/a/b:1@{DIGEST}"
    assert str(pinned.with_tag("2")) == "ghcr.io/a/b:2"
    assert pinned.with_tag("2").digest is None
    moved = ref.in_repository("index.docker.io", "mirror/library/busybox")
    assert moved.registry == "docker.io" and moved.api_host == "registry-1.docker.io"
