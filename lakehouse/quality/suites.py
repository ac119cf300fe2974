"""Load the YAML suites in ``expectations/`` and check them against the table declarations.

A suite file::

    suite: silver.events
    rules:
      - name: event_type_known                      # unique in the file; lands in quarantine/results rows
        expectation: expect_column_values_to_be_in_set   # any Great Expectations 1.x expectation
        kwargs: {column: event_type, value_set: [login, view, like, upload]}
        action: quarantine                          # warn | quarantine | fail

Two kwargs are resolved when the gate runs rather than written down: on
``expect_table_row_count_to_be_between``, ``min_ratio_of_previous`` / ``max_ratio_of_previous`` bound the
row count relative to the table's previous published version; on ``expect_column_max_to_be_between``
over a timestamp, ``max_age_hours`` asks for the newest value to be at most that old (freshness).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from lakehouse import quality as _quality  # noqa: F401  (sets GX environment before import)
from lakehouse.project.tables import TableDeclaration

ACTIONS = ("warn", "quarantine", "fail")
COLUMN_KWARGS = ("column", "column_A", "column_B")
RUNTIME_KWARGS = {
    "expect_table_row_count_to_be_between": ("min_ratio_of_previous", "max_ratio_of_previous"),
    "expect_column_max_to_be_between": ("max_age_hours",),
}


class SuiteError(ValueError):
    """A suite file is malformed or does not fit its table; the message names the file and rule."""


@dataclass(frozen=True)
class Rule:
    """One expectation with the action to take on the rows or table that fail it."""

    name: str
    expectation: str
    kwargs: Mapping[str, Any]
    action: str

    @property
    def runtime_kwargs(self) -> dict[str, Any]:
        """The kwargs resolved at validation time (see the module doc)."""
        names = RUNTIME_KWARGS.get(self.expectation, ())
        return {k: v for k, v in self.kwargs.items() if k in names}

    @property
    def static_kwargs(self) -> dict[str, Any]:
        runtime = self.runtime_kwargs
        return {k: v for k, v in self.kwargs.items() if k not in runtime}

    def to_expectation(self, **resolved: Any):
        """The Great Expectations expectation object of this rule (``resolved`` fills runtime kwargs)."""
        return expectation_class(self.expectation)(**self.static_kwargs, **resolved, meta={"rule": self.name})


@dataclass(frozen=True)
class Suite:
    """The rules of one table, as read from its file."""

    table: str
    path: Path
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    def by_action(self, action: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.action == action]


def expectation_class(snake_name: str):
    """The Great Expectations class for ``expect_...``; ``SuiteError`` when there is none."""
    import great_expectations.expectations as gxe

    class_name = "".join(part.capitalize() for part in snake_name.split("_"))
    # GX spells a few acronyms in capitals (e.g. ExpectColumnKLDivergence...): match case-insensitively.
    candidates = {name.lower(): name for name in dir(gxe) if name.startswith("Expect")}
    found = candidates.get(class_name.lower())
    if found is None:
        raise SuiteError(f"unknown expectation {snake_name!r}")
    return getattr(gxe, found)


def is_row_level(snake_name: str) -> bool:
    """True for expectations that judge each row on its own values (so failing rows can be quarantined).

    Uniqueness rules judge a row against the others (every copy fails), so they are warn or fail only.
    """
    from great_expectations.expectations.expectation import ColumnMapExpectation, ColumnPairMapExpectation

    cls = expectation_class(snake_name)
    return issubclass(cls, (ColumnMapExpectation, ColumnPairMapExpectation)) and "unique" not in snake_name


def load_suite(declaration: TableDeclaration, columns: list[str] | None = None) -> Suite | None:
    """Read and check the suite a declaration names; ``None`` when it names none.

    Rules are checked against the declared columns, or ``columns`` (what is about to be validated) for a
    table whose definition declares none.
    """
    path = declaration.expectations_path
    if path is None:
        return None
    if not path.is_file():
        raise SuiteError(f"{declaration.name}: expectations file not found: {path}")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {exc}") from exc
    # A shared suite (``shared: true``) guards a family of tables, e.g. every database snapshot.
    if document.get("suite") != declaration.name and not document.get("shared"):
        raise SuiteError(f"{path}: 'suite' must be {declaration.name!r}, found {document.get('suite')!r}")
    rules, names = [], set()
    for position, raw in enumerate(document.get("rules") or [], start=1):
        rule = _load_rule(raw, position, path)
        if rule.name in names:
            raise SuiteError(f"{path}: rule {rule.name!r} is defined twice")
        names.add(rule.name)
        _check_rule(rule, declaration, path, columns)
        rules.append(rule)
    if any(rule.action == "quarantine" for rule in rules) and not declaration.has_quarantine:
        raise SuiteError(f"{path}: quarantine rules need a quarantine table; {declaration.name} declares none")
    return Suite(declaration.name, path, tuple(rules))


def _load_rule(raw: Any, position: int, path: Path) -> Rule:
    if not isinstance(raw, dict) or not {"name", "expectation", "action"} <= set(raw):
        raise SuiteError(f"{path}: rule {position} needs 'name', 'expectation' and 'action'")
    return Rule(str(raw["name"]), str(raw["expectation"]), dict(raw.get("kwargs") or {}), str(raw["action"]))


def _check_rule(rule: Rule, declaration: TableDeclaration, path: Path, columns: list[str] | None) -> None:
    where = f"{path}: rule {rule.name!r}"
    if rule.action not in ACTIONS:
        raise SuiteError(f"{where}: action must be one of {ACTIONS}, not {rule.action!r}")
    try:
        expectation_class(rule.expectation)
    except SuiteError as exc:
        raise SuiteError(f"{where}: {exc}") from None
    schema = declaration.schema
    columns = set(schema.names if schema is not None else columns or ())
    named = [rule.kwargs[k] for k in COLUMN_KWARGS if k in rule.kwargs]
    named += list(rule.kwargs.get("column_list") or [])
    missing = [name for name in named if name not in columns] if schema is not None or columns else []
    if missing:
        raise SuiteError(
            f"{where}: no column {', '.join(map(repr, missing))} in {declaration.name} ({sorted(columns)})"
        )
    if rule.action == "quarantine" and not is_row_level(rule.expectation):
        raise SuiteError(f"{where}: only row-level expectations can quarantine rows; use warn or fail")
    try:
        # Instantiating validates the kwargs with GX's own models (unknown or mistyped arguments);
        # a rule with runtime kwargs gets a stand-in bound for the check.
        rule.to_expectation(**({"min_value": 0} if rule.runtime_kwargs else {}))
    except Exception as exc:  # pydantic's ValidationError and friends
        raise SuiteError(f"{where}: invalid kwargs for {rule.expectation}: {exc}") from None
