"""The procedure configuration's (v2) keys (docs/contract.md "The procedure configuration")."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from workflow.procedure import load_procedure

MINIMAL = """
name = "minimal"
acknowledge_within_working_days = 2

[supplier]
name = "Minimal Energy"

[ombudsman]
name = "Energy Ombudsman"

[complaints_manager]
name = "Priya Shah"
role = "Head of Complaints"
"""


def test_bundled_kilowatt_connect_v2_keys() -> None:
    procedure = load_procedure("kilowatt-connect")
    assert procedure.progress_update_interval_days == 10
    assert procedure.retention_years == 6
    assert procedure.email_give_up_hours == 24
    assert procedure.complaints_manager.placeholder is True
    assert procedure.complaints_manager.role == "Complaints Manager"
    # The seed gives Kilowatt Connect's own details: only the manager is a placeholder.
    assert procedure.placeholders == ("complaints_manager",)


def test_bundled_lastmile_v2_keys() -> None:
    procedure = load_procedure("lastmile")
    assert procedure.progress_update_interval_days is None
    assert procedure.supplier.placeholder is True
    assert procedure.placeholders == ("complaints_manager", "supplier")


@pytest.mark.parametrize("name", ["kilowatt-connect", "lastmile"])
def test_bundled_advice_bodies(name: str) -> None:
    procedure = load_procedure(name)
    england = procedure.advice_england_and_wales
    assert (england.name, england.phone, england.welsh_phone, england.website) == (
        "Citizens Advice consumer service", "0808 223 1133", "0808 223 1144",
        "www.citizensadvice.org.uk")  # fmt: skip
    scotland = procedure.advice_scotland
    assert (scotland.name, scotland.phone, scotland.welsh_phone, scotland.website) == (
        "Advice Direct Scotland", "0808 164 6000", None, "www.consumeradvice.scot")
    assert not procedure.ombudsman.placeholder


def test_defaults_and_no_placeholders(tmp_path: Path) -> None:
    path = tmp_path / "minimal.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    procedure = load_procedure(path)
    assert procedure.progress_update_interval_days is None
    assert procedure.retention_years == 6
    assert procedure.email_give_up_hours == 24
    assert procedure.placeholders == ()
    assert procedure.complaints_manager.name == "Priya Shah"
    # Advice bodies default to the ones docs/rules.md s.6 names.
    assert procedure.advice_england_and_wales.welsh_phone == "0808 223 1144"
    assert procedure.advice_scotland.name == "Advice Direct Scotland"


def test_placeholder_on_any_table_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        MINIMAL.replace('[ombudsman]\n', '[ombudsman]\nplaceholder = true\n')
        + '\n[advice_scotland]\nname = "X"\nplaceholder = true\n', encoding="utf-8")
    assert load_procedure(path).placeholders == ("advice_scotland", "ombudsman")


def test_complaints_manager_is_required(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(MINIMAL.split("[complaints_manager]")[0], encoding="utf-8")
    with pytest.raises(ValidationError, match="complaints_manager"):
        load_procedure(path)


@pytest.mark.parametrize("key", ["progress_update_interval_days", "retention_years",
                                 "email_give_up_hours"])
def test_durations_must_be_whole_and_positive(tmp_path: Path, key: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(f"{key} = 0\n" + MINIMAL, encoding="utf-8")
    with pytest.raises(ValidationError, match=key):
        load_procedure(path)


@pytest.mark.parametrize("value", ["true", '"10"', "10.0", "1.5"])
@pytest.mark.parametrize("key", ["progress_update_interval_days", "eight_weeks_days",
                                 "acknowledge_within_working_days"])
def test_durations_are_whole_numbers_not_booleans_strings_or_floats(
        tmp_path: Path, key: str, value: str) -> None:
    # "A whole number >= 1": `true` is not 1, "10" is text, 10.0 is a float.
    path = tmp_path / "p.toml"
    minimal = "\n".join(line for line in MINIMAL.splitlines()
                        if not line.startswith(f"{key} ="))
    path.write_text(f"{key} = {value}\n" + minimal + "\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=key):
        load_procedure(path)


def test_revision_1_citizens_advice_table_is_england_and_wales(tmp_path: Path) -> None:
    path = tmp_path / "v1.toml"
    path.write_text(MINIMAL + '\n[citizens_advice]\nname = "CA"\nphone = "0808 1"\n',
                    encoding="utf-8")
    procedure = load_procedure(path)
    assert (procedure.advice_england_and_wales.name,
            procedure.advice_england_and_wales.phone) == ("CA", "0808 1")


@pytest.mark.parametrize(("procedure_region", "customer_region", "body"), [
    ("ENG", None, "Citizens Advice consumer service"),
    ("ENG", "SCT", "Advice Direct Scotland"),
    ("ENG", "WLS", "Citizens Advice consumer service"),
    ("SCT", None, "Advice Direct Scotland"),
    ("SCT", "ENG", "Citizens Advice consumer service"),
    ("WLS", None, "Citizens Advice consumer service"),
])  # fmt: skip
def test_advice_body_of_the_customers_nation(
    tmp_path: Path, procedure_region: str, customer_region: str | None, body: str
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(f'region = "{procedure_region}"\n' + MINIMAL, encoding="utf-8")
    assert load_procedure(path).advice_body(customer_region).name == body
