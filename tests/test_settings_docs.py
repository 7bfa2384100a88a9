"""Every service's settings are declared once (``regpipe_<svc>.settings.SCHEMA``): the README
tables, ``--help``, the environment and the error messages all come from that declaration.

``python tests/test_settings_docs.py --write`` rewrites the README tables from the code.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

import pytest

from regpipe_common.errors import RegpipeError
from regpipe_common.settings import Schema, Setting, readme_table

ROOT = Path(__file__).resolve().parents[1]
# service -> the README that holds its settings table
READMES = {
    "preprocess": ROOT / "README.md",
    "train": ROOT / "README.md",
    "score": ROOT / "README.md",
    "predict": ROOT / "services" / "predict" / "README.md",
}
CLI_PARSERS = {s: f"regpipe_{s}.cli" for s in READMES}


def schema(service: str) -> Schema:
    return importlib.import_module(f"regpipe_{service}.settings").SCHEMA


def required_env(sch: Schema) -> dict[str, str]:
    """A value for each required setting's variable, so that others can be checked alone."""
    return {s.env: "x" for s in sch.settings.values() if s.required}


@pytest.mark.parametrize("service", list(READMES))
def test_readme_table_is_the_declarations(service: str) -> None:
    text = READMES[service].read_text()
    assert readme_table(text, service) == schema(service).markdown_table(), (
        f"run: python tests/test_settings_docs.py --write ({READMES[service]})"
    )


@pytest.mark.parametrize("service", list(READMES))
def test_help_shows_every_flag_variable_and_default(service: str) -> None:
    parser = importlib.import_module(CLI_PARSERS[service]).build_parser()
    text = " ".join(parser.format_help().split())
    for s in schema(service).settings.values():
        assert s.flag in text and f"[env {s.env}; " in text, s.name
        shown = "required" if s.required else f"default: {s.shown_default()}"
        assert f"{s.env}; {shown}]" in text, s.name


@pytest.mark.parametrize("service", list(READMES))
def test_flag_beats_variable_beats_default(service: str) -> None:
    """For every setting with a default: unset → default, variable → its value, flag → wins."""
    parser = importlib.import_module(CLI_PARSERS[service]).build_parser()
    sch = schema(service)
    required = {s.flag: "x" for s in sch.settings.values() if s.required}
    argv = [part for flag, value in required.items() for part in (flag, value)]
    for s in sch.settings.values():
        if s.required:
            continue
        env_value, flag_value = _two_values(s)
        assert sch.resolve(parser.parse_args(argv), {})[s.name] == s.default
        from_env = sch.resolve(parser.parse_args(argv), {s.env: env_value})[s.name]
        assert from_env == s.parse(env_value)
        flag_args = [f"--{'no-' if flag_value == 'false' else ''}{s.flag[2:]}"]
        if s.type is not bool:
            flag_args.append(flag_value)
        args = parser.parse_args([*argv, *flag_args])
        assert sch.resolve(args, {s.env: env_value})[s.name] == s.parse(flag_value)
        assert s.parse(flag_value) != s.parse(env_value) != s.default


def _two_values(s: Setting) -> tuple[str, str]:
    if s.type is bool:
        return ("true", "false")
    if s.choices:
        return (next(c for c in s.choices if c != s.default), s.default)
    if s.multiple:
        return ("a,b", "c")
    if s.type is str:
        return ("from-env", "from-flag")
    if s.type in (int, float):
        low = s.minimum if s.minimum is not None else 0
        high = s.maximum
        if high is not None:
            third, half = low + (high - low) / 3, low + (high - low) / 2
            return (str(s.type(third)), str(s.type(half)))
        return (str(int(low) + 7), str(int(low) + 3))
    return ("3MiB", "5MiB")  # a byte size


@pytest.mark.parametrize(
    ("service", "name", "raw", "message"),
    [
        ("preprocess", "seed", "abc", "--seed / PREPROCESS_SEED='abc' is not an integer"),
        ("preprocess", "blocksize", "lots", "--blocksize / PREPROCESS_BLOCKSIZE='lots' is not a"),
        (
            "preprocess",
            "test_fraction",
            "1",
            "--test-fraction / PREPROCESS_TEST_FRACTION='1' must be in (0, 1)",
        ),
        ("train", "epochs", "0", "--epochs / TRAIN_EPOCHS='0' must be at least 1"),
        ("train", "eta0", "0", "--eta0 / TRAIN_ETA0='0' must be greater than 0"),
        ("train", "resume", "maybe", "--resume / TRAIN_RESUME='maybe' is not a boolean"),
        ("score", "on_missing", "drop", "SCORE_ON_MISSING='drop' is not one of: skip, fail"),
        ("predict", "max_rows", "0", "--max-rows / MAX_ROWS='0' must be at least 1"),
        ("predict", "port", "http", "--port / PORT='http' is not an integer"),
        ("predict", "model_poll_interval", "-1", "MODEL_POLL_INTERVAL='-1' must be at least 0"),
    ],
)
def test_a_bad_value_names_flag_and_variable(service, name, raw, message) -> None:
    sch = schema(service)
    env = required_env(sch)
    with pytest.raises(RegpipeError) as exc:
        sch.resolve(None, {**env, sch[name].env: raw})
    assert message in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("service", ["preprocess", "train", "predict"])  # score has none
def test_every_number_setting_refuses_a_negative_value(service) -> None:
    """A negative port, timeout, interval or seed is refused by name before anything starts
    (a negative seed used to reach numpy as an OverflowError traceback)."""
    sch = schema(service)
    env = required_env(sch)
    numbers = [s for s in sch.settings.values() if s.type in (int, float) and not s.choices]
    assert numbers
    for s in numbers:
        with pytest.raises(RegpipeError, match=rf"^{re.escape(s.label)}='-1' must be "):
            sch.resolve(None, {**env, s.env: "-1"})


@pytest.mark.parametrize(
    ("service", "env"), [("preprocess", "PREPROCESS_SEED"), ("train", "TRAIN_SEED")]
)
def test_a_seed_beyond_32_bits_is_refused(service, env) -> None:
    sch = schema(service)
    required = required_env(sch)
    with pytest.raises(RegpipeError, match=r"must be in \[0, 4294967295\]"):
        sch.resolve(None, {**required, env: str(2**32)})


def test_a_missing_required_setting_names_flag_and_variable() -> None:
    with pytest.raises(RegpipeError, match=r"^--input / SCORE_INPUT is required$"):
        schema("score").resolve(None, {})


def test_one_declaration_gives_flag_variable_help_and_dataclass() -> None:
    sch = Schema(Setting("max_items", int, 3, "most items", "DEMO_MAX_ITEMS", minimum=1))
    parser = argparse.ArgumentParser()
    sch.add_arguments(parser)
    assert "most items [env DEMO_MAX_ITEMS; default: 3]" in " ".join(parser.format_help().split())
    assert sch.resolve(parser.parse_args([]), {"DEMO_MAX_ITEMS": " "}) == {"max_items": 3}
    assert sch.resolve(parser.parse_args(["--max-items", "5"]), {"DEMO_MAX_ITEMS": "4"}) == {
        "max_items": 5
    }
    assert sch.dataclass("Demo")().max_items == 3
    assert "| `--max-items` | `DEMO_MAX_ITEMS` | `3` | most items |" in sch.markdown_table()


def test_train_chart_describes_resume_as_the_cli_does() -> None:
    values = (ROOT / "charts" / "train" / "values.yaml").read_text()
    [param] = re.findall(r"^## @param resume (.*)$", values, re.M)
    help_text = schema("train")["resume"].help
    assert param == f"{help_text[0].upper()}{help_text[1:]} (TRAIN_RESUME)"


def write_readmes() -> None:
    for service, path in READMES.items():
        text = path.read_text()
        old = readme_table(text, service)
        start = text.index(f"<!-- settings: {service} -->\n") + len(
            f"<!-- settings: {service} -->\n"
        )
        path.write_text(text[:start] + schema(service).markdown_table() + text[start + len(old) :])


def test_predict_flags_reach_the_environment_gunicorn_workers_read(monkeypatch) -> None:
    from regpipe_predict.cli import build_parser, export_flags
    from regpipe_predict.settings import from_env

    monkeypatch.setenv("MODEL_URI", "/models/m")
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("ACCESS_LOG", "false")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    export_flags(build_parser().parse_args(["--port", "9100", "--access-log"]))
    s = from_env()
    assert (s.model_uri, s.port, s.access_log, s.workers) == ("/models/m", 9100, True, 3)
    with pytest.raises(RegpipeError, match=r"^--workers / WEB_CONCURRENCY='0' must be at least 1"):
        export_flags(build_parser().parse_args(["--workers", "0"]))


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    write_readmes()
