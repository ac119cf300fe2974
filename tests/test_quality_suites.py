"""Suite files are checked at start-up: mistakes name the file and the rule."""

from dataclasses import replace

import pytest

from helpers import DEMO_PROJECT, demo_table
from lakehouse.engine.job import check_suites
from lakehouse.project import load_project
from lakehouse.quality.suites import SuiteError, load_suite

SILVER = demo_table("silver.events")


def suite_file(tmp_path, rules: str, suite="silver.events"):
    (tmp_path / "s.yaml").write_text(f"suite: {suite}\nrules:\n{rules}")
    return replace(SILVER, expectations_file=tmp_path / "s.yaml")


@pytest.mark.parametrize(
    "declaration", [d for d in load_project(DEMO_PROJECT).tables() if d.expectations_file], ids=lambda d: d.name
)
def test_every_shipped_suite_loads(declaration):
    suite = load_suite(declaration)
    assert suite.rules and {r.action for r in suite.rules} <= {"warn", "quarantine", "fail"}


def test_table_level_rules_of_each_kind_exist():
    rules = [r for d in load_project(DEMO_PROJECT).tables() if d.expectations_file for r in load_suite(d).rules]
    kinds = {r.expectation for r in rules}
    assert "expect_table_row_count_to_be_between" in kinds  # bounds relative to the previous version
    assert {"expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique"} & kinds  # keys
    assert any(r.runtime_kwargs.get("max_age_hours") for r in rules)  # freshness
    assert "expect_column_mean_to_be_between" in kinds  # distribution of the training signal


@pytest.mark.parametrize(
    "rules, message",
    [
        (
            "  - {name: r1, expectation: expect_column_values_to_not_be_null, kwargs: {column: nope}, action: fail}\n",
            r"s.yaml: rule 'r1': no column 'nope' in silver.events",
        ),
        (
            "  - {name: r2, expectation: expect_the_moon, kwargs: {}, action: warn}\n",
            r"s.yaml: rule 'r2': unknown expectation 'expect_the_moon'",
        ),
        (
            "  - {name: r3, expectation: expect_column_values_to_not_be_null, "
            "kwargs: {column: event_id}, action: panic}\n",
            r"rule 'r3': action must be one of",
        ),
        (
            "  - {name: r4, expectation: expect_table_row_count_to_be_between, "
            "kwargs: {min_value: 1}, action: quarantine}\n",
            r"rule 'r4': only row-level expectations can quarantine",
        ),
        (
            "  - {name: r5, expectation: expect_column_values_to_be_between, "
            "kwargs: {column: user_key, mni_value: 1}, action: warn}\n",
            r"rule 'r5': invalid kwargs",
        ),
        (
            "  - {name: r6, expectation: expect_column_values_to_not_be_null, "
            "kwargs: {column: event_id}, action: warn}\n"
            "  - {name: r6, expectation: expect_column_values_to_not_be_null, "
            "kwargs: {column: user_key}, action: warn}\n",
            r"rule 'r6' is defined twice",
        ),
        ("  - {expectation: expect_column_values_to_not_be_null}\n", r"rule 1 needs 'name'"),
    ],
)
def test_bad_suite_files_fail_naming_file_and_rule(tmp_path, rules, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(suite_file(tmp_path, rules))


def test_suite_must_name_its_table(tmp_path):
    declaration = suite_file(tmp_path, "  []\n", suite="gold.other")
    with pytest.raises(SuiteError, match="'suite' must be 'silver.events'"):
        load_suite(declaration)


def test_quarantine_needs_a_quarantine_table(tmp_path):
    (tmp_path / "g.yaml").write_text(
        "suite: gold.user_activity_daily\nrules:\n"
        "  - {name: q, expectation: expect_column_values_to_not_be_null, "
        "kwargs: {column: user_key}, action: quarantine}\n"
    )
    gold = replace(demo_table("gold.user_activity_daily"), expectations_file=tmp_path / "g.yaml")
    with pytest.raises(SuiteError, match="declares none"):
        load_suite(gold)


def test_steps_check_their_suites_before_starting(tmp_path):
    from lakehouse.project.config import load_config
    from lakehouse.project.scaffold import init_project

    init_project(tmp_path)
    (tmp_path / "tables" / "gold" / "x.sql").write_text("SELECT 1 AS a")
    (tmp_path / "expectations" / "gold").mkdir(parents=True, exist_ok=True)
    (tmp_path / "expectations" / "gold" / "x.yaml").write_text(
        "suite: gold.x\nrules:\n  - {name: bad, expectation: expect_nothing, action: warn}\n"
    )
    with pytest.raises(SuiteError, match=r"x.yaml: rule 'bad'"):
        check_suites(load_config(environ={}, project=tmp_path), "gold.x")
