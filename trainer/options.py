"""Training options: what a user may set for one training run, declared once, on `PipelineConfig`.

    parser.add_argument_group("training"); add_arguments(group)   # flags of `lmm-mcp train`, `python -m trainer`
    overrides = from_namespace(args)                                # only the options that were given
    cfg = apply(PipelineConfig(home=home), overrides)              # the run's config
    to_argv(overrides)                                             # the same options as flags (the retrain job)

A field of `PipelineConfig` declared with `option(default, help)` is an option; its type (an int, a string, a
`Literal` of choices, a flag) and help text come from that one declaration, as trl builds its script parsers
from its config dataclasses. The CLI, `python -m trainer`, the MCP `retrain` tool (`OPTIONS`) and the job
runner all derive their options from here, so a new option is one new field.

An option that is not given keeps the config's value; one marked `configured` (the base model) defaults to the
user's `config.toml` rather than to the field's default.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from trainer.errors import TrainerError


class OptionError(TrainerError, ValueError):
    """An option has a value it cannot take; the message names the option and what it accepts."""


def option(
    default: Any, help: str, *, minimum: int | None = None, configured: bool = False, flag: str | None = None
) -> Any:
    """A dataclass field that is a training option (see the module docstring). `flag` names the command-line
    flag when the field's name would read badly as one (`from_version` is `--from`)."""
    meta = {"help": help, "minimum": minimum, "configured": configured, "flag": flag}
    return dataclasses.field(default=default, metadata={"option": meta})


@dataclass(frozen=True)
class Option:
    name: str  # the field name; the flag is --name-with-dashes
    kind: type  # int, str or bool (a flag)
    default: Any  # the field's default; None for a `configured` one
    help: str
    choices: tuple[str, ...] | None = None  # from a Literal type
    minimum: int | None = None
    optional: bool = False  # None is a valid value (the field is `X | None`)
    flag_name: str | None = None  # the flag without its dashes, when it is not the field's name

    @property
    def flag(self) -> str:
        return "--" + (self.flag_name or self.name.replace("_", "-"))


def options_of(cls: type) -> list[Option]:
    """The options a config dataclass declares, in field order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("option")
        if meta is None:
            continue
        kind, choices, optional = _kind(hints[f.name])
        default = None if meta["configured"] else f.default
        out.append(
            Option(f.name, kind, default, meta["help"], choices, meta["minimum"], optional, meta.get("flag"))
        )
    return out


def _kind(hint: Any) -> tuple[type, tuple[str, ...] | None, bool]:
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        (hint,) = [a for a in args if a is not type(None)]
    if typing.get_origin(hint) is Literal:
        return str, tuple(typing.get_args(hint)), optional
    if hint in (int, str, bool):
        return hint, None, optional
    raise TypeError(f"option type {hint!r} is not supported: use int, str, bool or a Literal of strings")


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type) -> None:
    """One flag per option; flags that are not given leave no attribute (argparse.SUPPRESS)."""
    for o in options_of(cls):
        if o.kind is bool:
            parser.add_argument(
                o.flag, dest=o.name, action="store_true", default=argparse.SUPPRESS, help=o.help
            )
        else:
            parser.add_argument(
                o.flag,
                dest=o.name,
                type=o.kind,
                choices=o.choices,
                default=argparse.SUPPRESS,
                metavar=None if o.choices else o.name.split("_")[-1].upper(),
                help=o.help,
            )


def from_namespace(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options given on a command line, checked."""
    return check({o.name: getattr(args, o.name) for o in options_of(cls) if hasattr(args, o.name)}, cls)


def check(overrides: dict[str, Any], cls: type) -> dict[str, Any]:
    """`overrides` without the unset ones (None, or False for a flag), each value checked against its option."""
    known = {o.name: o for o in options_of(cls)}
    out: dict[str, Any] = {}
    for name, value in overrides.items():
        o = known.get(name)
        if o is None:
            raise OptionError(f"unknown training option {name!r}: known are {', '.join(known)}")
        if value is None or (o.kind is bool and value is False):
            continue
        if o.kind is bool and value is not True:
            raise OptionError(f"{name} is a flag: true or false, not {value!r}")
        if o.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise OptionError(f"{name} must be a whole number, not {value!r}")
        if o.kind is str and not isinstance(value, str):
            raise OptionError(f"{name} must be a string, not {value!r}")
        if o.choices and value not in o.choices:
            raise OptionError(f"{name} {value!r}: choose one of {', '.join(o.choices)}")
        if o.minimum is not None and value < o.minimum:
            raise OptionError(f"{name} must be at least {o.minimum}, not {value}")
        out[name] = value
    return out


def apply(cfg: Any, overrides: dict[str, Any]) -> Any:
    """A copy of the config with the given options set."""
    return dataclasses.replace(cfg, **check(overrides, type(cfg)))


def to_argv(overrides: dict[str, Any], cls: type) -> list[str]:
    """The given options as command-line flags that `add_arguments` reads back to the same values."""
    argv: list[str] = []
    by_name = {o.name: o for o in options_of(cls)}
    for name, value in check(overrides, cls).items():
        o = by_name[name]
        argv += [o.flag] if o.kind is bool else [o.flag, str(value)]
    return argv
