"""The supplier's complaint procedure: durations and contact details, from a TOML file.

Durations are configuration because suppliers' procedures differ and the rules may change.
"""

from __future__ import annotations

import tomllib
from functools import cached_property
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

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
    # (v2) Details not real yet (e.g. a seed that gives none): delivery refuses to run.
    placeholder: bool = False


class AdviceBody(ContactDetails):
    """(v2) The independent free advice body of one nation (docs/rules.md s.6)."""

    welsh_phone: str | None = None


class ComplaintsManager(BaseModel):
    """(v2) The person a letter names and is signed by when no handler or manager is known."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1)
    role: str = Field(min_length=1)
    placeholder: bool = False


# The advice bodies docs/rules.md s.6 names; the defaults keep a revision-1 procedure file loading.
ENGLAND_AND_WALES_ADVICE = AdviceBody(
    name="Citizens Advice consumer service",
    phone="0808 223 1133",
    welsh_phone="0808 223 1144",
    website="www.citizensadvice.org.uk",
)
SCOTLAND_ADVICE = AdviceBody(
    name="Advice Direct Scotland", phone="0808 164 6000", website="www.consumeradvice.scot"
)


class Procedure(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    region: Region = "ENG"
    reference_prefix: str = Field(default="CP", pattern=r"^[A-Z]{1,4}$")
    # Whole numbers are whole numbers: StrictInt refuses `true` (Python's bool is an int, so
    # pydantic's lax mode read it as 1) and "10" (a string in the TOML file).
    acknowledge_within_working_days: StrictInt = Field(ge=1)
    resolution_target_days: StrictInt | None = Field(default=None, ge=1)
    senior_manager_review_working_days: StrictInt = Field(default=5, ge=1)
    deadlock_letter_working_days: StrictInt = Field(default=5, ge=1)
    eight_weeks_days: StrictInt = Field(default=56, ge=1)
    remedy_days: StrictInt = Field(default=28, ge=1)
    referral_window_months: StrictInt = Field(default=12, ge=1)
    # (v2) Progress updates repeat this many days after the one that fired; None: no repeat.
    progress_update_interval_days: StrictInt | None = Field(default=None, ge=1)
    retention_years: StrictInt = Field(default=6, ge=1)
    email_give_up_hours: StrictInt = Field(default=24, ge=1)
    licence_number: str = Field(default=PLACEHOLDER_LICENCE_NUMBER, min_length=1)
    supplier: ContactDetails
    ombudsman: ContactDetails
    complaints_manager: ComplaintsManager
    advice_england_and_wales: AdviceBody = ENGLAND_AND_WALES_ADVICE
    advice_scotland: AdviceBody = SCOTLAND_ADVICE

    @model_validator(mode="before")
    @classmethod
    def _revision_1_citizens_advice(cls, data: object) -> object:
        """A revision-1 file names only `citizens_advice` (England and Wales): read it as
        `advice_england_and_wales` rather than refuse a file that was valid."""
        if isinstance(data, dict) and "citizens_advice" in data:
            data = dict(data)
            legacy = data.pop("citizens_advice")
            data.setdefault("advice_england_and_wales", legacy)
        return data

    @cached_property
    def calendar(self) -> WorkingCalendar:
        return WorkingCalendar(self.region)

    @property
    def placeholders(self) -> tuple[str, ...]:
        """(v2) The tables marked `placeholder = true`, by key, sorted."""
        return tuple(
            sorted(
                key
                for key in type(self).model_fields
                if getattr(getattr(self, key), "placeholder", False) is True
            )
        )

    def advice_body(self, customer_region: str | None = None) -> AdviceBody:
        """(v2) The advice body of the customer's nation: `customer.region` when given, else
        the procedure's region (docs/rules.md s.6)."""
        region = customer_region or self.region
        return self.advice_scotland if region == "SCT" else self.advice_england_and_wales
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
            "progress_update_interval_days": self.progress_update_interval_days,  # (v2)
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
