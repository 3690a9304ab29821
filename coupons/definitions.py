"""The models of ``coupons.yaml``: what each coupon gives, to whom, when, and how often."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from core.bounds import MAX_AMOUNT, MAX_TOTAL_USES, MAX_USES_PER_MEMBER
from core.durations import Duration
from core.expressions import CelExpression
from core.money import Money, Percent, PositiveMoney
from core.program.program_file import Identifier, LocalizedText
from core.program.yamlsource import field_error

DISCOUNT_KINDS = ("amount_off", "percent_off", "ladder", "free_shipping")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LadderStep(_Strict):
    min_total: PositiveMoney
    off: PositiveMoney


class Discount(_Strict):
    """Exactly one of amount_off, percent_off (with an optional max_off), ladder, free_shipping."""

    amount_off: PositiveMoney | None = None
    percent_off: Percent | None = None
    max_off: PositiveMoney | None = Field(
        default=None, description=f"caps percent_off; at most {MAX_AMOUNT}"
    )
    ladder: tuple[LadderStep, ...] | None = Field(
        default=None, min_length=1, description="the highest step the order reaches applies"
    )
    free_shipping: Literal[True] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Discount:
        given = [kind for kind in DISCOUNT_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            found = f"got {', '.join(given)}" if given else "got none"
            raise field_error(
                f"a discount needs exactly one of {', '.join(DISCOUNT_KINDS)}; {found}"
            )
        if self.max_off is not None and self.percent_off is None:
            raise field_error("max_off only caps a percent_off discount", at=("max_off",))
        self._check_ladder()
        return self

    def _check_ladder(self) -> None:
        steps = self.ladder or ()
        for index in range(1, len(steps)):
            if steps[index].min_total <= steps[index - 1].min_total:
                raise field_error(
                    "ladder steps must be sorted by min_total, lowest first, without repeats",
                    at=("ladder", index, "min_total"),
                )

    @property
    def kind(self) -> str:
        return next(kind for kind in DISCOUNT_KINDS if getattr(self, kind) is not None)


class Eligibility(_Strict):
    min_order_total: Money | None = None
    first_order: bool = False
    tiers: tuple[Identifier, ...] = ()
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = Field(
        default=(), description="items that count neither toward the threshold nor the discount"
    )
    when: CelExpression | None = None
    when_text: LocalizedText | None = Field(
        default=None,
        description="what the member is told when `when` is false, e.g. 'Only on the 18th'",
    )

    @model_validator(mode="after")
    def _categories_apart(self) -> Eligibility:
        both = sorted(set(self.include_categories) & set(self.exclude_categories))
        if both:
            raise field_error(
                f"categories both included and excluded: {', '.join(both)}",
                at=("exclude_categories",),
            )
        if self.when_text is not None and self.when is None:
            raise field_error("when_text explains a when: condition; add when:", at=("when_text",))
        return self


class ValidBetween(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: AwareDatetime = Field(alias="from")
    to: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> ValidBetween:
        if self.to <= self.from_:
            raise field_error("'to' must be after 'from'", at=("to",))
        return self


class Limits(_Strict):
    per_member: Annotated[int, Field(gt=0, le=MAX_USES_PER_MEMBER)] | None = Field(
        default=None, description=f"uses per member, 1 to {MAX_USES_PER_MEMBER:,}"
    )
    per_member_period: Duration | None = Field(
        default=None, description="per_member counts again after this long"
    )
    total: Annotated[int, Field(gt=0, le=MAX_TOTAL_USES)] | None = Field(
        default=None, description=f"uses in all, 1 to {MAX_TOTAL_USES:,}"
    )
    budget: PositiveMoney | None = Field(
        default=None, description=f"total discount money it may give, at most {MAX_AMOUNT}"
    )

    @model_validator(mode="after")
    def _period_needs_count(self) -> Limits:
        if self.per_member_period is not None and self.per_member is None:
            raise field_error("per_member_period needs per_member", at=("per_member_period",))
        return self


class Stacking(_Strict):
    group: str = Field(default="default", min_length=1, description="at most one coupon per group")
    exclusive: bool = Field(default=False, description="no other coupon beside this one")


class CouponDefinition(_Strict):
    id: Identifier
    name: LocalizedText
    discount: Discount
    eligibility: Eligibility = Eligibility()
    valid_for: Duration | None = Field(default=None, description="counted from issue")
    valid_between: ValidBetween | None = None
    limits: Limits = Limits()
    stacking: Stacking = Stacking()


class CouponsFile(_Strict):
    """coupons.yaml."""

    coupons: tuple[CouponDefinition, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> CouponsFile:
        ids = [coupon.id for coupon in self.coupons]
        for index, coupon_id in enumerate(ids):
            if coupon_id in ids[:index]:
                raise field_error(
                    f"duplicate coupon id {coupon_id!r}",
                    at=("coupons", index, "id"),
                    hint=f"coupons[{ids.index(coupon_id)}] already uses it",
                )
        return self
