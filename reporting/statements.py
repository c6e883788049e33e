"""The statements the CHR reg. 11 annual report must carry, from the procedure configuration."""

from __future__ import annotations

from typing import Final

from workflow.procedure import Procedure

CHR_TITLE: Final = (
    "The Gas and Electricity (Consumer Complaints Handling Standards) Regulations 2008")
CHR_URL: Final = "https://www.legislation.gov.uk/uksi/2008/1898/contents/made"


def _ways_to_ask(procedure: Procedure) -> str:
    supplier = procedure.supplier
    ways = []
    if supplier.website:
        ways.append(f"on our website, {supplier.website}")
    if supplier.email:
        ways.append(f"by email to {supplier.email}")
    if supplier.phone:
        ways.append(f"by telephone on {supplier.phone}")
    if supplier.address:
        ways.append(f"by writing to {', '.join(supplier.address)}")
    return "; ".join(ways) if ways else "by contacting us"


def statements(procedure: Procedure) -> list[str]:
    """That the supplier has a complaints procedure, how to get it, and that the CHR exist
    and how to get them (CHR reg. 11)."""
    name = procedure.supplier.name
    return [
        f"{name} has a complaints handling procedure setting out how we handle complaints "
        "from domestic customers.",
        f"You can get a free copy of our complaints handling procedure {_ways_to_ask(procedure)}.",
        f"{CHR_TITLE} set the standards that gas and electricity suppliers must meet when "
        "handling complaints.",
        f"A copy of the Regulations is available free of charge at {CHR_URL}, or from us on "
        "request.",
    ]
