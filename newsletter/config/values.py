"""Checks of single values that the settings' models use, phrased for a person: a time zone
(with the nearest one when it is none), an image's address (https only), a From address; and
``Strict``, the base of every settings model (no unknown key, no yes/no for a number)."""

from __future__ import annotations

from email.errors import HeaderParseError
from email.headerregistry import Address, AddressHeader, HeaderRegistry
from functools import cache
from typing import Annotated, Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator

from newsletter.config.suggest import did_you_mean


def https_image(value: str) -> str:
    """An image's address: https only, as the web pages' content security policy allows."""
    if value.startswith("https://"):
        return value
    if value.startswith("http://"):
        raise ValueError(
            f"an image must be served over https, got {value!r}: the web pages' content "
            f"security policy blocks http images; use {'https://' + value[7:]!r}"
        )
    raise ValueError(f"expected the https:// address of an image, got {value!r}")


ImageUrl = Annotated[str, AfterValidator(https_image)]


class Strict(BaseModel):
    """A settings model: unknown keys refused, values frozen, and a number never given as
    yes/no (YAML reads ``per_sector: yes`` as true, which would count as 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_yes_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if annotation in (int, float) or {int, float} & set(get_args(annotation)):
                raise ValueError(
                    f"expected a number, got {str(value).lower()} (YAML reads yes, no, on and "
                    "off as true and false)"
                )
        return value


def one_address(value: str) -> str:
    """A From address: one address, with a display name or without ("Daily <news@pub.com>")."""
    addresses: list[Address]
    try:  # (the standard library's parse: email-validator is the readers' library, DESIGN.md)
        header = HeaderRegistry()("From", value)
        assert isinstance(header, AddressHeader)  # a From header holds addresses
        addresses = list(header.addresses) if not header.defects else []
    except (HeaderParseError, IndexError):  # its parser's own failures on "news@" or "<@>"
        addresses = []
    whole = len(addresses) == 1
    if not whole or not addresses[0].username or "." not in addresses[0].domain.strip("."):
        raise ValueError(
            f"expected one address such as 'Daily Brief <news@example.org>', got {value!r}"
        )
    return value


FromAddress = Annotated[str, AfterValidator(one_address)]


# files of the zone database that name no place: the machine's own zone (another machine would
# deliver at another hour) and the database's placeholders
NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@cache
def time_zones() -> frozenset[str]:
    """Every IANA time zone name this system knows (empty when it has no time zone data)."""
    return frozenset(available_timezones()) - NOT_ZONES


def time_zone_problem(name: str) -> str | None:
    """Why ``name`` is no time zone, with the nearest one; None when it is one."""
    zones = time_zones()
    if name in zones:
        return None
    if name in NOT_ZONES:
        return f"unknown time zone {name!r}"
    if not zones:  # no list to look in: the name is good if it loads
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return f"unknown time zone {name!r}"
        return None
    problem = f"unknown time zone {name!r}"
    cased = [z for z in zones if z.lower() == name.lower()]
    if cased:
        return f"{problem}; did you mean {cased[0]!r}? (time zone names are case-sensitive)"
    underscored = name.strip().replace(" ", "_")
    if underscored in zones:
        return f"{problem}; did you mean {underscored!r}?"
    return problem + did_you_mean(underscored, sorted(zones))
