"""HR exports read a row at a time (CSV, JSON arrays, JSON Lines), with a mapping file; rows checked.

Pure: no database. Issue 17, item 1.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from scimward.governance.sources.readers import ExportError, format_from_json, load_format, read_rows
from scimward.governance.sources.records import BadRow, RowFormat, parse_record
from scimward.policy.document import PolicyError, parse_policy
from scimward.policy.ownership import ENTERPRISE, Owner, source_verdict
from scimward.store.governance.changes import Change, changed_paths, op_of
from scimward.store.timeutil import utcnow
from tests.conftest import repo_root

MAPPING = """
columns:
  Employee ID: employee_id
  Work Email: email
  Legal First Name: given_name
  Employment Status: status
  Termination Date: termination_date
  Manager Employee ID: manager_id
  Division: division
statuses:
  Active: active
  On Leave: leave
  Terminated: terminated
date_format: "%m/%d/%Y"
"""


def rows(path: Path, kind: str, fmt: RowFormat | None = None) -> list[tuple[str, int, object]]:
    return [(r.where, r.number, r.values or r.problem) for r in read_rows(path, kind, fmt or RowFormat())]


def test_the_default_columns_become_scim_attributes() -> None:
    record = parse_record(
        2,
        {
            "employee_id": "E1",
            "status": "active",
            "email": "Ada@Example.com",
            "given_name": "Ada",
            "department": "R&D",
            "cost_center": "CC-9",
            "manager_id": "E0",
            "hire_date": "2024-02-01",
            "unknown column": "ignored",
        },
        RowFormat(),
    )
    assert record.email == "ada@example.com" and record.hire_date == date(2024, 2, 1)
    assert record.attributes == {
        "employeeNumber": "E1",
        "name.givenName": "Ada",
        "department": "R&D",
        "costCenter": "CC-9",
        "emails": "Ada@Example.com",
    }


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"status": "active"}, "line 7: employee_id is empty"),
        ({"employee_id": "E1", "status": "gone"}, "line 7: status 'gone' is not one of active, leave, terminated"),
        ({"employee_id": "E1", "status": "terminated"}, "line 7: status terminated needs a termination_date"),
        (
            {"employee_id": "E1", "status": "active", "hire_date": "2024-02-30"},
            "line 7: hire_date '2024-02-30' is not a date like 2026-01-31",
        ),
        (
            {"employee_id": "E1", "status": "terminated", "hire_date": "2024-02-01", "termination_date": "2023-01-01"},
            "line 7: termination_date 2023-01-01 is before hire_date 2024-02-01",
        ),
        (
            {"employee_id": "E1", "status": "active", "email": "not an address"},
            "line 7: email 'not an address' is not an e-mail address",
        ),
        ({"employee_id": "E1", "status": "active", "manager_id": "E1"}, "line 7: manager_id is the employee's own"),
    ],
)
def test_a_bad_row_names_its_line_and_what_is_wrong(row: dict[str, str], message: str) -> None:
    with pytest.raises(BadRow) as bad:
        parse_record(7, row, RowFormat())
    assert str(bad.value) == message


def test_csv_rows_know_the_line_they_start_on(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text('employee_id,status,title\nE1,active,"Head of\nResearch"\nE2,active,Chef,extra\nE3,leave,\n')
    found = rows(export, "csv")
    assert [(where, number) for where, number, _ in found] == [("line", 2), ("line", 4), ("line", 5)]
    assert found[0][2] == {"employee_id": "E1", "status": "active", "title": "Head of\nResearch"}
    assert found[1][2] == "has 4 fields, the header 3"


def test_json_arrays_objects_holding_one_and_json_lines(tmp_path: Path) -> None:
    array = tmp_path / "array.json"
    array.write_text('[{"employee_id": "E1", "status": "active"},\n 7]')
    assert rows(array, "json") == [
        ("record", 1, {"employee_id": "E1", "status": "active"}),
        ("record", 2, "is not a JSON object"),
    ]
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text('{\n  "meta": {"count": 1},\n  "employees": [{"employee_id": "E1", "status": "leave"}]\n}')
    assert rows(wrapped, "json") == [("record", 1, {"employee_id": "E1", "status": "leave"})]
    lines = tmp_path / "export.jsonl"
    lines.write_text('{"employee_id": "E1", "status": "active"}\n\n{"employee_id": \n')
    found = rows(lines, "json")
    assert found[0] == ("line", 1, {"employee_id": "E1", "status": "active"})
    assert found[1][:2] == ("line", 3) and str(found[1][2]).startswith("is not JSON")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"employee_id": "E1", "status": "active"}, {"employee_id": ')
    with pytest.raises(ExportError, match="after record 1"):
        rows(broken, "json")


def test_a_mapping_file_names_the_exports_columns_words_and_dates(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    fmt = load_format(mapping)
    record = parse_record(
        2,
        {
            "Employee ID": "1001",
            "Work Email": "ada@example.com",
            "Employment Status": "Terminated",
            "Termination Date": "03/31/2026",
            "Division": "Labs",
        },
        fmt,
    )
    assert (record.status, record.termination_date) == ("terminated", date(2026, 3, 31))
    assert record.attributes["division"] == "Labs"
    with pytest.raises(ExportError, match="no column maps to status"):
        format_from_json({"columns": {"Employee ID": "employee_id"}})
    with pytest.raises(ExportError, match="maps to 'salary'"):
        format_from_json({"columns": {"Employee ID": "employee_id", "Status": "status", "Pay": "salary"}})


def test_ownership_is_part_of_the_policy_and_checked() -> None:
    policy = parse_policy(
        "attributes:\n  active: hr\n  department: {owner: workday, conflict: deny}\n"
        "sources:\n  workday: {on_termination: hold, grace: 3d}\n"
    )
    assert policy.ownership.owner_of("department") == Owner("workday", "deny")
    assert policy.ownership.source("workday").grace.days == 3
    assert policy.to_json()["attributes"] == {"active": "hr", "department": {"owner": "workday", "conflict": "deny"}}
    with pytest.raises(PolicyError, match=r"sources\.workday\.on_termination: deprovision or hold"):
        parse_policy("sources:\n  workday: {on_termination: never}\n")
    with pytest.raises(PolicyError, match=r"sources\.workday\.grace"):
        parse_policy("sources:\n  workday: {grace: soon}\n")


def test_a_non_owner_may_deactivate_but_not_reactivate() -> None:
    ownership = parse_policy("attributes:\n  active: hr\n  manager: hr\n").ownership
    before = {"userName": "ada", "active": True, ENTERPRISE: {"manager": {"value": "m1"}}}

    def change(after: dict[str, object], source: str) -> Change:
        return Change(
            "c", "User", "u", op_of(before, after), before, after, changed_paths(before, after), source, "t", utcnow()
        )

    assert source_verdict(ownership, change({**before, "active": False}, "scim:okta")) is None
    held = source_verdict(ownership, change({**before, ENTERPRISE: {"manager": {"value": "m2"}}}, "scim:okta"))
    assert held is not None and (held.action, held.reason) == ("hold", "scim:okta does not own manager (owned by hr)")
    assert source_verdict(ownership, change({**before, ENTERPRISE: {}}, "hr:workday")) is None
    assert source_verdict(ownership, change({**before, "title": "x"}, "cli")) is None


def test_the_documented_examples_read_as_they_say() -> None:
    examples = repo_root() / "examples" / "sources"
    csv_records = [
        parse_record(r.number, r.values or {}, RowFormat(), r.where)
        for r in read_rows(examples / "hr-export.csv", "csv", RowFormat())
    ]
    assert [(r.employee_id, r.status) for r in csv_records] == [
        ("1001", "active"),
        ("1002", "active"),
        ("1003", "leave"),
        ("1004", "terminated"),
        ("1005", "active"),
    ]
    fmt = load_format(examples / "bamboohr-mapping.yaml")
    json_records = [
        parse_record(r.number, r.values or {}, fmt, r.where)
        for r in read_rows(examples / "bamboohr-export.json", "json", fmt)
    ]
    assert [(r.employee_id, r.status, r.manager_id) for r in json_records] == [
        ("1001", "active", None),
        ("1004", "terminated", "1001"),
    ]
    assert json_records[1].termination_date == date(2026, 11, 30)
    policy = parse_policy((examples / "policy-sources.yaml").read_text())
    assert policy.ownership.source("bamboo").on_termination == "hold"
