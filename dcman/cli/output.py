"""Rendering of API answers: a rich table (default), JSON or YAML.

A list of objects becomes a table with one column per field; one object becomes a
Field/Value table. `json` and `yaml` print the API's objects as they came, in the API's
key order, for scripts.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

import click
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

FORMATS = ("table", "json", "yaml")

# A column of a list table: (heading, key of the object) or (heading, function of it).
Column = tuple[str, "str | Callable[[Mapping[str, Any]], Any]"]

F = TypeVar("F", bound=Callable[..., Any])


def format_option(command: F) -> F:
    """Add `-f/--format table|json|yaml` to a command."""
    return click.option(
        "-f",
        "--format",
        "output_format",
        type=click.Choice(FORMATS, case_sensitive=False),
        default="table",
        show_default=True,
        help="Output format.",
    )(command)


def cell(value: Any) -> str:
    """One value as table text."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def _console() -> Console:
    stream = sys.stdout
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    width: int | None = None
    if not is_tty:
        # Piped or captured output: do not squeeze tables into 80 columns.
        try:
            width = int(os.environ.get("COLUMNS", "")) or None
        except ValueError:
            width = None
        width = max(width or 0, 200)
    else:
        width = shutil.get_terminal_size().columns
    return Console(
        file=stream,
        width=width,
        highlight=False,
        markup=False,
        emoji=False,
        force_terminal=is_tty or None,
        no_color=not is_tty,
    )


def _print_table(table: Table) -> None:
    _console().print(table)


def dump(data: Any, output_format: str) -> None:
    """Print data as JSON or YAML, keeping the API's key order."""
    if output_format == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip("\n"))


def _value(obj: Mapping[str, Any], key: "str | Callable[[Mapping[str, Any]], Any]") -> Any:
    if callable(key):
        return key(obj)
    return obj.get(key, "")


def render_list(
    items: Sequence[Mapping[str, Any]],
    output_format: str = "table",
    columns: Sequence[Column] | None = None,
) -> None:
    """Print a list of objects: a table with `columns` (default: every key, API order)."""
    output_format = output_format.lower()
    if output_format != "table":
        dump(list(items), output_format)
        return
    if columns is None:
        keys: list[str] = []
        for item in items:
            for key in item:
                if key not in keys:
                    keys.append(key)
        columns = [(key, key) for key in keys]
    table = Table(show_lines=False, expand=False)
    for heading, _ in columns:
        table.add_column(heading, overflow="fold")
    for item in items:
        table.add_row(*(Text(cell(_value(item, key))) for _, key in columns))
    _print_table(table)


def render_one(
    obj: Mapping[str, Any],
    output_format: str = "table",
    rows: Iterable[tuple[str, Any]] | None = None,
) -> None:
    """Print one object: a Field/Value table (rows default to its keys, API order)."""
    output_format = output_format.lower()
    if output_format != "table":
        dump(dict(obj), output_format)
        return
    table = Table(show_lines=False, expand=False)
    table.add_column("Field", no_wrap=True)
    table.add_column("Value", overflow="fold")
    for field, value in rows if rows is not None else obj.items():
        table.add_row(Text(str(field)), Text(cell(value)))
    _print_table(table)


def render(
    data: "Mapping[str, Any] | Sequence[Mapping[str, Any]]",
    output_format: str = "table",
    columns: Sequence[Column] | None = None,
) -> None:
    """Print a list of objects (columns table) or one object (Field/Value table)."""
    if isinstance(data, Mapping):
        render_one(data, output_format)
    else:
        render_list(data, output_format, columns)


__all__ = [
    "FORMATS",
    "Column",
    "cell",
    "dump",
    "format_option",
    "render",
    "render_list",
    "render_one",
]
