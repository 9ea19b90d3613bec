"""Rendering helpers: YAML dumped from data, jinja2 (StrictUndefined) only for real text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import yaml

import templates

TEMPLATES_DIR = Path(templates.__file__).parent


class _Dumper(yaml.SafeDumper):
    """Block literals for multi-line strings; keys kept in the order the data gives them."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096)


def dump_yaml_documents(*docs: Any) -> str:
    return "---\n".join(dump_yaml(d) for d in docs)


def jinja_env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_template(name: str, **values: Any) -> str:
    return jinja_env().get_template(name).render(**values)


def groovy_string(text: str) -> str:
    """A Groovy single-quoted triple string literal holding `text` verbatim."""
    return "'''" + text.replace("\\", "\\\\").replace("'''", "\\'\\'\\'") + "'''"
