"""The supplier's complaint procedure: durations and contact details, from a TOML file.

Durations are configuration because suppliers' procedures differ and the rules may change.
"""

from __future__ import annotations

import tomllib
from functools import cached_property
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from workflow.calendar import Region, WorkingCalendar

BUNDLED = ("kilowatt-connect", "lastmile")
DEFAULT_PROCEDURE = "kilowatt-connect"
# (v2) The supplier's licence number, shown on the returns' workbooks. The seeds give none, so
# the bundled procedures carry this placeholder until a deployment sets the real one.
PLACEHOLDER_LICENCE_NUMBER = "PLACEHOLDER-LICENCE-NUMBER"


class ContactDetails(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1)
    address: list[str] = Field(default_factory=list)
    phone: str | None = None
    email: str | None = None
    website: str | None = None


class Procedure(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    region: Region = "ENG"
    reference_prefix: str = Field(default="CP", pattern=r"^[A-Z]{1,4}$")
    acknowledge_within_working_days: int = Field(ge=1)
    resolution_target_days: int | None = Field(default=None, ge=1)
    senior_manager_review_working_days: int = Field(default=5, ge=1)
    deadlock_letter_working_days: int = Field(default=5, ge=1)
    eight_weeks_days: int = Field(default=56, ge=1)
    remedy_days: int = Field(default=28, ge=1)
    referral_window_months: int = Field(default=12, ge=1)
    licence_number: str = Field(default=PLACEHOLDER_LICENCE_NUMBER, min_length=1)
    supplier: ContactDetails
    ombudsman: ContactDetails
    citizens_advice: ContactDetails

    @cached_property
    def calendar(self) -> WorkingCalendar:
        return WorkingCalendar(self.region)

    @property
    def licence_number_is_placeholder(self) -> bool:
        return self.licence_number == PLACEHOLDER_LICENCE_NUMBER

    def durations(self) -> dict[str, int | None]:
        """The timescales a letter may quote."""
        return {
            "acknowledge_within_working_days": self.acknowledge_within_working_days,
            "resolution_target_days": self.resolution_target_days,
            "senior_manager_review_working_days": self.senior_manager_review_working_days,
            "deadlock_letter_working_days": self.deadlock_letter_working_days,
            "eight_weeks_days": self.eight_weeks_days,
            "referral_window_months": self.referral_window_months,
            "remedy_days": self.remedy_days,
        }


def load_procedure(name_or_path: str | Path | None = None) -> Procedure:
    """A bundled procedure by name (`kilowatt-connect`, `lastmile`) or a TOML file by path."""
    target = str(name_or_path or DEFAULT_PROCEDURE)
    if target in BUNDLED:
        text = resources.files("workflow.procedures").joinpath(f"{target}.toml").read_text("utf-8")
    else:
        path = Path(target)
        if not path.is_file():
            raise ValueError(
                f"procedure {target!r} is neither a bundled name ({', '.join(BUNDLED)}) nor a file"
            )
        text = path.read_text("utf-8")
    return Procedure.model_validate(tomllib.loads(text))
