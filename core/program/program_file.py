"""The models of ``program.yaml``: the program, tiers, points rules, referrals and messaging."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import babel
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    model_validator,
)

from core.bounds import (
    MAX_COUNT,
    MAX_DAYS,
    MAX_MULTIPLIER,
    MAX_POINTS_PER_OPERATION,
    MAX_POINTS_PER_UNIT,
    MAX_WHOLE_NUMBER,
)
from core.durations import TimeOfDay
from core.events.types import ShopEventType
from core.expressions import CelExpression
from core.money import HoldoutShare, Money, Multiplier, PositiveMoney, Share
from core.program.yamlsource import field_error

Identifier = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", min_length=1, max_length=64)
]
# Every whole number of a program file is bounded (core.bounds): far above what a shop uses,
# below where storage or arithmetic would break. Money and multipliers: core.money.
PositiveInt = Annotated[int, Field(gt=0, le=MAX_WHOLE_NUMBER)]
NonNegativeInt = Annotated[int, Field(ge=0, le=MAX_WHOLE_NUMBER)]
Days = Annotated[int, Field(gt=0, le=MAX_DAYS)]
NonNegativeDays = Annotated[int, Field(ge=0, le=MAX_DAYS)]
Count = Annotated[int, Field(gt=0, le=MAX_COUNT)]
RulePoints = Annotated[int, Field(gt=0, le=MAX_POINTS_PER_OPERATION)]


def _known_locale(code: str) -> str:
    try:
        babel.Locale.parse(code, sep="-")
    except (ValueError, babel.UnknownLocaleError):
        raise ValueError(f"unknown locale {code!r}; use a code such as zh-CN or en") from None
    return code


LocaleCode = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-[A-Z]{2}|-[0-9]{3})?$"),
    AfterValidator(_known_locale),
]
LocalizedText = Annotated[dict[LocaleCode, str], Field(min_length=1)]


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai"
        ) from None
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProgramInfo(_Strict):
    name: str = Field(min_length=1)
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code such as CNY")
    timezone: Annotated[str, AfterValidator(_known_zone)]
    default_locale: LocaleCode
    locales: tuple[LocaleCode, ...] | None = Field(
        default=None, description="default: default_locale and every locale of the tier names"
    )


class TierLevel(_Strict):
    id: Identifier
    name: LocalizedText
    min_spend: Money
    points_multiplier: Multiplier = Field(
        default=Decimal(1), description=f"points earned × this; above 0, at most {MAX_MULTIPLIER}"
    )
    benefits: tuple[Identifier, ...] = ()


class Tiers(_Strict):
    qualifying: Literal["net_spend"] = "net_spend"
    window_days: Days = Field(description=f"the trailing window of spend, 1 to {MAX_DAYS:,} days")
    recalculate_at: TimeOfDay
    downgrade_grace_days: NonNegativeDays = Field(
        default=0, description=f"0 to {MAX_DAYS:,} days below a tier before the downgrade"
    )
    levels: tuple[TierLevel, ...] = Field(min_length=1, description="lowest to highest")

    @model_validator(mode="after")
    def _levels_climb(self) -> Tiers:
        if self.levels[0].min_spend != 0:
            raise field_error(
                "the first level must have min_spend 0, so every member has a tier",
                at=("levels", 0, "min_spend"),
            )
        for index, (lower, upper) in enumerate(zip(self.levels, self.levels[1:], strict=False)):
            if upper.min_spend <= lower.min_spend:
                raise field_error(
                    f"min_spend must be above the level below ({lower.id}: {lower.min_spend})",
                    at=("levels", index + 1, "min_spend"),
                    hint="order levels lowest to highest",
                )
        _reject_duplicate_ids([level.id for level in self.levels], at="levels")
        return self


def _reject_duplicate_ids(ids: list[str], *, at: str) -> None:
    for index, item_id in enumerate(ids):
        if item_id in ids[:index]:
            raise field_error(
                f"duplicate id {item_id!r}",
                at=(at, index, "id"),
                hint=f"{at}[{ids.index(item_id)}] already uses it",
            )


class PurchaseRule(_Strict):
    tag: ClassVar[str] = "purchase"
    id: Identifier
    on: ShopEventType
    per_amount: PositiveMoney = Field(description="one point per this much money paid")
    tier_multiplier: bool = True
    pending_days: NonNegativeDays = Field(
        default=0, description=f"0 to {MAX_DAYS:,} days before the points can be used"
    )
    when: CelExpression | None = None


class BoostRule(_Strict):
    tag: ClassVar[str] = "boost"
    id: Identifier
    boosts: Identifier = Field(description="the id of the earn rule whose points this multiplies")
    when: CelExpression | None = None
    multiplier: Multiplier = Field(description=f"above 0, at most {MAX_MULTIPLIER}")


class Cap(_Strict):
    per: Literal["day", "week", "month"]
    max: Count = Field(description=f"awards per period, 1 to {MAX_COUNT:,}")


class FixedRule(_Strict):
    tag: ClassVar[str] = "fixed"
    id: Identifier
    on: ShopEventType
    points: RulePoints = Field(description=f"1 to {MAX_POINTS_PER_OPERATION:,} points")
    when: CelExpression | None = None
    cap: Cap | None = None


# The key that decides a rule's kind, then keys only that kind has: with a typo in the deciding
# key (`per_amont`) the rule is still recognised, and the typo reported as an unknown field.
_EARN_RULE_KEYS = (
    ("per_amount", "purchase"),
    ("boosts", "boost"),
    ("points", "fixed"),
    ("tier_multiplier", "purchase"),
    ("pending_days", "purchase"),
    ("multiplier", "boost"),
    ("cap", "fixed"),
)


def _earn_rule_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return getattr(value, "tag", None)
    if isinstance(value, dict):
        return next((kind for key, kind in _EARN_RULE_KEYS if key in value), None)
    return None


EarnRule = Annotated[
    Annotated[PurchaseRule, Tag("purchase")]
    | Annotated[BoostRule, Tag("boost")]
    | Annotated[FixedRule, Tag("fixed")],
    Discriminator(
        _earn_rule_kind,
        custom_error_type="earn_rule",
        custom_error_message="an earn rule needs per_amount (a purchase rule), "
        "boosts (a boost rule) or points (a fixed award)",
    ),
]


class Expiry(_Strict):
    policy: Literal["rolling", "none"]
    days: Days | None = Field(default=None, description=f"1 to {MAX_DAYS:,} days (rolling)")

    @model_validator(mode="after")
    def _rolling_needs_days(self) -> Expiry:
        if self.policy == "rolling" and self.days is None:
            raise field_error(
                "a rolling expiry needs days",
                at=("policy",),
                hint="add days: 365, or use policy: none",
            )
        return self


class Redeem(_Strict):
    points_per_unit: Annotated[int, Field(gt=0, le=MAX_POINTS_PER_UNIT)] = Field(
        description=f"points worth one unit of the currency, 1 to {MAX_POINTS_PER_UNIT:,}"
    )
    min_points: Annotated[int, Field(ge=0, le=MAX_POINTS_PER_OPERATION)] = Field(
        default=0, description=f"0 to {MAX_POINTS_PER_OPERATION:,} points per redemption"
    )
    max_order_share: Share = Decimal(1)


class Points(_Strict):
    earn: tuple[EarnRule, ...] = ()
    expiry: Expiry = Expiry(policy="none")
    redeem: Redeem
    refunds: Literal["reverse"] = "reverse"

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> Points:
        _reject_duplicate_ids([rule.id for rule in self.earn], at="earn")
        return self


ReferralCheck = Literal["self_referral", "shared_phone", "shared_email"]


class Referral(_Strict):
    qualifying_order_min: Money
    within_days: Days = Field(description=f"1 to {MAX_DAYS:,} days after registering")
    settle_after_days: NonNegativeDays = Field(
        default=0, description=f"0 to {MAX_DAYS:,} days before the rewards are granted"
    )
    monthly_cap_per_referrer: Count | None = Field(
        default=None, description=f"1 to {MAX_COUNT:,} rewarded referrals a month"
    )
    reject: tuple[ReferralCheck, ...] = ()


class QuietHours(_Strict):
    start: TimeOfDay
    end: TimeOfDay


class MarketingCap(_Strict):
    per_day: Count | None = Field(default=None, description=f"1 to {MAX_COUNT:,} messages")
    per_week: Count | None = Field(default=None, description=f"1 to {MAX_COUNT:,} messages")


class FrequencyCap(_Strict):
    marketing: MarketingCap


class Sender(_Strict):
    email: str = Field(pattern=r"@", description='such as "Club <club@example.com>"')
    sms_signature: str = ""


class Messaging(_Strict):
    quiet_hours: QuietHours | None = None
    frequency_cap: FrequencyCap | None = None
    sender: Sender
    global_control: HoldoutShare = Field(
        default=Decimal(0),
        description="a stable share of members that no marketing campaign reaches "
        "(transactional ones still do), to measure what marketing as a whole adds",
    )


class ProgramFile(_Strict):
    """program.yaml."""

    program: ProgramInfo
    tiers: Tiers
    points: Points
    referral: Referral | None = None
    messaging: Messaging

    @model_validator(mode="after")
    def _default_locales(self) -> ProgramFile:
        if self.program.locales is not None:
            return self
        locales = [self.program.default_locale]
        for level in self.tiers.levels:
            locales += [code for code in level.name if code not in locales]
        info = self.program.model_copy(update={"locales": tuple(locales)})
        return self.model_copy(update={"program": info})

    @property
    def locales(self) -> tuple[str, ...]:
        return self.program.locales or (self.program.default_locale,)
