from __future__ import annotations

import jinja2
import pytest
import yaml

from adapters.render import dump_yaml, groovy_string, jinja_env


def test_templates_refuse_undefined_variables() -> None:
    template = jinja_env().get_template("github/workflow.yml.j2")
    with pytest.raises(jinja2.UndefinedError):
        template.render(action_ref="o/r@v1", default_branch="main")  # no `cache`


def test_multiline_strings_dump_as_block_literals_and_round_trip() -> None:
    data = {"script": "echo a\necho b\n", "n": "007", "flag": "true"}
    text = dump_yaml(data)
    assert "script: |\n  echo a\n  echo b\n" in text
    assert yaml.safe_load(text) == data  # "007" and "true" stay strings


def test_groovy_string_escapes_backslashes_and_triple_quotes() -> None:
    assert groovy_string("a\\b'''c") == "'''a\\\\b\\'\\'\\'c'''"
