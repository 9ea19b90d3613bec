"""BuildKit's `${V#p}`, `${V%p}`, `${V/p/r}`, `${V:-w}`... forms mimic bash: bash is the oracle.

Several hundred seeded random cases go to one bash process. Patterns use `*`, `?` and
literals only (BuildKit has no bracket expressions) and never start with `#`, `%` or `/`
(anchors and replace-all in bash); replacements avoid `&` (bash 5.2 inserts the match).
"""

from __future__ import annotations

import random
import shutil
import subprocess

from engine.dockerfile import expand

BASH = shutil.which("bash") or "/bin/bash"


def cases(count: int, seed: int = 20240601) -> list[tuple[str, str]]:
    rng = random.Random(seed)

    def text(alphabet: str, low: int, high: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))

    out = []
    for _ in range(count):
        value = text("ab./", 0, 10)
        pattern = text("ab.*?/", 1, 5).lstrip("/") or "a"
        form = rng.choice(["#", "##", "%", "%%", "/", "//", ":-", "-", ":+", "+"])
        if form in ("/", "//"):
            expr = "${V" + form + pattern + "/" + text("xy.", 0, 3) + "}"
        elif form in ("#", "##", "%", "%%"):
            expr = "${V" + form + pattern + "}"
        else:
            expr = "${" + rng.choice("VU") + form + text("wz", 0, 3) + "}"
        out.append((rng.choice([value, ""]), expr))
    return out


def bash_results(items: list[tuple[str, str]]) -> list[str]:
    script = "".join(f"V='{value}'; printf '%s\\0' \"{expr}\"\n" for value, expr in items)
    proc = subprocess.run(
        [BASH, "--noprofile", "--norc", "-c", script],
        env={"LC_ALL": "C"},
        capture_output=True,
        check=True,
    )
    return proc.stdout.decode().split("\0")[:-1]


def test_expansion_forms_agree_with_bash() -> None:
    items = cases(1500)
    expected = bash_results(items)
    got = [expand(expr, {"V": value}) for value, expr in items]
    mismatches = [(v, e, g, b) for (v, e), g, b in zip(items, got, expected, strict=True) if g != b]
    assert mismatches == []
