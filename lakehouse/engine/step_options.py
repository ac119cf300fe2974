"""What one run of a step may be asked for beyond its declaration: the typed form of a step's command line
(``lakehouse step NAME --from csv --csv-dir ...``) and of ``run_step(..., options={...})``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

READ_METHODS = ("jdbc", "dump", "csv")


@dataclass(frozen=True)
class StepOptions:
    """The options of one step run; each kind of step reads the fields that concern it."""

    source_dir: str | None = None  # file, image and label sources: read this folder instead of the declared one
    tables: tuple[str, ...] | None = None  # database sources: only these tables (None: every declared table)
    method: str = "jdbc"  # database sources: a live JDBC read, a plain pg_dump file, or per-table CSV exports
    dump_file: str | None = None  # with method "dump"
    csv_dir: str | None = None  # with method "csv": a folder of <table>.csv files with a header row
    definition_options: Mapping[str, Any] = field(default_factory=dict)  # a definition's declared `options`

    def __post_init__(self) -> None:
        if self.tables is not None:
            object.__setattr__(self, "tables", tuple(self.tables))
        if self.method not in READ_METHODS:
            raise ValueError(f"--from must be one of {', '.join(READ_METHODS)}, not {self.method!r}")
        object.__setattr__(self, "definition_options", dict(self.definition_options))

    @classmethod
    def of(cls, options: StepOptions | Mapping[str, Any] | None) -> StepOptions:
        """``options`` as :class:`StepOptions`; a mapping may only name its fields."""
        if options is None or isinstance(options, StepOptions):
            return options or cls()
        unknown = sorted(set(options) - {f.name for f in fields(cls)})
        if unknown:
            known = ", ".join(f.name for f in fields(cls))
            raise TypeError(f"unknown step options {unknown} (a step takes: {known})")
        return cls(**{name: value for name, value in options.items() if value is not None})

    @classmethod
    def from_args(cls, args: argparse.Namespace, definition_options: Mapping[str, Any]) -> StepOptions:
        """The options a step's parsed command line gives (see :func:`lakehouse.engine.add_step_options`), with
        the definition's ``--option KEY=VALUE`` pairs already typed."""
        given = vars(args)
        return cls.of(
            {
                **{f.name: given[f.name] for f in fields(cls) if f.name in given},
                "definition_options": definition_options,
            }
        )
