"""Typed settings: each one declared once, giving its flag, environment variable, help and docs.

A service lists its settings as :class:`Setting` values in one :class:`Schema`; the schema adds
the argparse flags, resolves every value (flag > environment variable > default), refuses a bad
value in one style (``--seed / PREPROCESS_SEED='abc' is not an integer``) and writes the
README's settings table. ``env_*`` read the few variables that are not a service setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import RegpipeError
from .version import add_version_flag

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise RegpipeError(f"environment variable {name}={raw!r} is not an integer") from None


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return parse_bool(raw)
    except ValueError:
        raise RegpipeError(
            f"environment variable {name}={raw!r} is not a boolean (true/false)"
        ) from None


def dask_scheduler_address() -> str | None:
    """``DASK_SCHEDULER_ADDRESS``: a running scheduler to use instead of a local cluster."""
    return env_str("DASK_SCHEDULER_ADDRESS")


def parse_bool(raw: str) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``)."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(raw)


# A seed's bounds: the hashes and scikit-learn's ``random_state`` take 0 to 2**32 - 1.
SEED_RANGE: dict[str, int] = {"minimum": 0, "maximum": 2**32 - 1}

_EXPECTED = {int: "an integer", float: "a number", bool: "a boolean (true/false)"}


@dataclass(frozen=True)
class Setting:
    """One setting: ``--<name>`` on the command line, ``env`` in the environment.

    ``type`` parses the text of a flag or variable (``int``, ``float``, ``bool``, ``str`` or any
    function raising ValueError); ``default`` is the parsed value (``None`` with
    ``required``: no default); ``shown`` is how ``--help`` and the README show the default
    when not ``str(default)``. ``choices``, ``minimum``/``maximum`` (``exclusive``: the bounds
    themselves are refused) are checked; ``multiple``: the flag takes several values, the
    variable a comma-separated list (a tuple of strings).
    """

    name: str
    type: Callable[[str], Any]
    default: Any
    help: str
    env: str
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive: bool = False
    multiple: bool = False
    shown: str | None = None
    expected: str = ""  # what a bad value is not, e.g. "a byte size" (int/float/bool: known)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def label(self) -> str:
        """How every message names it: ``--seed / PREPROCESS_SEED``."""
        return f"{self.flag} / {self.env}"

    def shown_default(self) -> str:
        if self.required:
            return "required"
        if self.shown is not None:
            return self.shown
        if self.type is bool:
            return str(self.default).lower()
        if self.default is None or self.default == () or self.default == "":
            return "unset"
        return ",".join(self.default) if self.multiple else str(self.default)

    def parse(self, raw: Any) -> Any:
        """The typed value of one flag or variable text, or a RegpipeError naming both."""
        if self.multiple:
            items = raw if isinstance(raw, list) else str(raw).split(",")
            return tuple(item.strip() for item in items if item.strip())
        if self.type is bool and isinstance(raw, bool):
            value = raw
        else:
            try:
                value = (parse_bool if self.type is bool else self.type)(raw)
            except (TypeError, ValueError):
                expected = self.expected or _EXPECTED.get(self.type, self.type.__name__)
                raise RegpipeError(f"{self.label}={raw!r} is not {expected}") from None
        self.check(value, raw)
        return value

    def check(self, value: Any, raw: Any) -> None:
        """Choices and bounds: a RegpipeError in the one message style."""
        if self.choices and value not in self.choices:
            raise self.error(raw, f"is not one of: {', '.join(self.choices)}")
        low, high = self.minimum, self.maximum
        if low is None and high is None:
            return
        if self.exclusive:
            ok = (low is None or value > low) and (high is None or value < high)
        else:
            ok = (low is None or value >= low) and (high is None or value <= high)
        if ok:
            return
        if high is None:
            problem = f"must be greater than {low}" if self.exclusive else f"must be at least {low}"
        elif low is None:
            problem = f"must be less than {high}" if self.exclusive else f"must be at most {high}"
        else:
            brackets = "()" if self.exclusive else "[]"
            problem = f"must be in {brackets[0]}{low}, {high}{brackets[1]}"
        raise self.error(raw, problem)

    def error(self, raw: Any, problem: str) -> RegpipeError:
        return RegpipeError(f"{self.label}={raw!r} {problem}")

    def help_text(self) -> str:
        shown = "required" if self.required else f"default: {self.shown_default()}"
        text = f"{self.help} [env {self.env}; {shown}]"  # choices: in the metavar
        return text.replace("%", "%%")  # argparse formats help with %


class Schema:
    """A service's settings, in ``--help`` and README order."""

    def __init__(self, *settings: Setting) -> None:
        self.settings = {s.name: s for s in settings}

    def __getitem__(self, name: str) -> Setting:
        return self.settings[name]

    def parser(
        self, prog: str, description: str, epilog: str | None = None
    ) -> argparse.ArgumentParser:
        """A console script's parser: one flag per setting, ``--help`` and ``--version``."""
        parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog)
        self.add_arguments(parser)
        add_version_flag(parser, prog)
        return parser

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """One flag per setting; a flag left out is ``None`` (then the environment decides)."""
        for s in self.settings.values():
            if s.type is bool:
                action: Any = argparse.BooleanOptionalAction
                parser.add_argument(s.flag, dest=s.name, action=action, help=s.help_text())
            elif s.multiple:
                parser.add_argument(
                    s.flag, dest=s.name, nargs="+", action="extend", metavar="VALUE",
                    help=s.help_text(),
                )  # fmt: skip
            else:
                metavar = "{" + ",".join(s.choices) + "}" if s.choices else None
                parser.add_argument(s.flag, dest=s.name, metavar=metavar, help=s.help_text())

    def resolve(
        self, args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Every setting's typed value: its flag, else its variable (unset if empty), else its
        default; a RegpipeError naming flag and variable for a bad or missing value."""
        environ = os.environ if environ is None else environ
        given = vars(args) if args is not None else {}
        values = {}
        for s in self.settings.values():
            raw = given.get(s.name)
            if raw is None:
                raw = environ.get(s.env)
                raw = None if raw is None or raw.strip() == "" else raw
            if raw is not None:
                values[s.name] = s.parse(raw)
            elif s.required:
                raise RegpipeError(f"{s.label} is required")
            else:
                values[s.name] = s.default
        return values

    def dataclass(self, cls_name: str) -> type:
        """A frozen keyword-only dataclass with one field per setting and its default."""
        specs = []
        for s in self.settings.values():
            kind = tuple[str, ...] if s.multiple else s.type if isinstance(s.type, type) else Any
            field = dataclasses.field() if s.required else dataclasses.field(default=s.default)
            specs.append((s.name, kind, field))
        return dataclasses.make_dataclass(cls_name, specs, frozen=True, kw_only=True)

    def markdown_table(self) -> str:
        """The README's table: flag, variable, default, meaning."""
        lines = ["| flag | variable | default | meaning |", "|---|---|---|---|"]
        for s in self.settings.values():
            flag = f"`{s.flag}`" if s.type is not bool else f"`{s.flag}`, `--no-{s.flag[2:]}`"
            choices = f" (`{'`, `'.join(s.choices)}`)" if s.choices else ""
            default = "(required)" if s.required else f"`{s.shown_default()}`"
            help_text = s.help.replace("|", "\\|").replace("<", "\\<")
            lines.append(f"| {flag} | `{s.env}` | {default} | {help_text}{choices} |")
        return "\n".join(lines) + "\n"


def readme_table(readme: str, service: str) -> str:
    """The table between ``<!-- settings: <service> -->`` and ``<!-- /settings -->``."""
    start = f"<!-- settings: {service} -->\n"
    begin = readme.index(start) + len(start)
    return readme[begin : readme.index("<!-- /settings -->", begin)]
