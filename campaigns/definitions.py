"""The models of ``campaigns/*.yaml``: a trigger, then a journey of steps, maybe an experiment."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from core.cron import CronError, cron_trigger
from core.durations import Duration, TimeOfDay
from core.events.types import EVENT_TYPES as EVENT_TYPES
from core.events.types import AnyEventType as EventType
from core.events.types import InternalEventType as InternalEventType
from core.expressions import CelExpression
from core.money import HoldoutShare, Money
from core.program.program_file import Identifier, NonNegativeInt, PositiveInt
from core.program.yamlsource import Loc, field_error

# Campaigns trigger on the shop's events and on those the engine raises itself: EventType and
# EVENT_TYPES (re-exported for the package's modules) come from core.events.types, which
# declares both lists once.

Channel = Literal["email", "sms", "push"]
Recipient = Literal["referrer", "referee"]
TRIGGER_KINDS = (
    "event",
    "cart_abandoned",
    "schedule",
    "birthday",
    "points_expiring",
    "referral_qualified",
)
STEP_KINDS = ("send", "wait", "issue_coupon", "award_points")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _only_one(model: BaseModel, kinds: tuple[str, ...], *, what: str) -> str:
    given = [kind for kind in kinds if getattr(model, kind) is not None]
    if len(given) != 1:
        found = f"got {', '.join(given)}" if given else "got none"
        raise field_error(f"{what} needs exactly one of {', '.join(kinds)}; {found}")
    return given[0]


def _valid_cron(text: str) -> str:
    try:
        cron_trigger(text, timezone="UTC")
    except CronError as exc:
        problem = str(exc)[:1].lower() + str(exc)[1:]
        raise field_error(
            f"invalid cron {text!r}: {problem}",
            hint='5 fields: minute hour day-of-month month day-of-week, such as "0 10 * * 6"',
        ) from None
    return text


class CartAbandoned(_Strict):
    idle_for: Duration = Field(description="no cart change and no order for this long")
    min_total: Money = Decimal(0)


class Schedule(_Strict):
    cron: Annotated[str, AfterValidator(_valid_cron)] = Field(
        description="5 fields, business time zone", examples=["0 10 * * 6"]
    )
    audience: CelExpression | None = None


class Birthday(_Strict):
    days_before: NonNegativeInt = 0
    at: TimeOfDay = Field(description="member's local time")


class PointsExpiring(_Strict):
    within: Duration
    min_points: PositiveInt = 1


class ReferralQualified(_Strict):
    pass


class Trigger(_Strict):
    """Exactly one kind; ``when`` narrows an ``event`` trigger."""

    event: EventType | None = None
    when: CelExpression | None = None
    cart_abandoned: CartAbandoned | None = None
    schedule: Schedule | None = None
    birthday: Birthday | None = None
    points_expiring: PointsExpiring | None = None
    referral_qualified: ReferralQualified | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        kind = _only_one(self, TRIGGER_KINDS, what="a trigger")
        if self.when is not None and kind != "event":
            raise field_error(
                "when: only narrows an event trigger",
                at=("when",),
                hint="use schedule.audience for scheduled campaigns",
            )
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in TRIGGER_KINDS if getattr(self, kind) is not None)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class Send(_Strict):
    channel: Annotated[
        tuple[Channel, ...],
        BeforeValidator(_as_list, json_schema_input_type=Channel | list[Channel]),
        Field(min_length=1, description="a list means: the first one the member can receive"),
    ]
    template: Identifier
    member: Recipient | None = Field(default=None, description="default: the journey's member")


class IssueCoupon(_Strict):
    member: Recipient | None = None
    coupon: Identifier


def _coupon_shorthand(value: Any) -> Any:
    return {"coupon": value} if isinstance(value, str) else value


class AwardPoints(_Strict):
    member: Recipient | None = None
    points: PositiveInt
    reason: str = Field(min_length=1)


class Step(_Strict):
    """Exactly one of send, wait, issue_coupon, award_points; ``id`` names it across edits."""

    id: Identifier | None = Field(
        default=None,
        description="a name that lets journeys in flight find this step after the file is edited",
    )
    send: Send | None = None
    wait: Duration | None = None
    issue_coupon: Annotated[
        IssueCoupon | None,
        BeforeValidator(_coupon_shorthand, json_schema_input_type=Identifier | IssueCoupon),
    ] = Field(default=None, description="a coupon id, or {member, coupon}")
    award_points: AwardPoints | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        _only_one(self, STEP_KINDS, what="a step")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in STEP_KINDS if getattr(self, kind) is not None)


Steps = Annotated[tuple[Step, ...], Field(min_length=1)]


class Variant(_Strict):
    weight: PositiveInt
    steps: Steps


class Experiment(_Strict):
    holdout: HoldoutShare = Field(
        default=Decimal(0), description="share of entrants who get nothing"
    )
    variants: dict[Identifier, Variant] = Field(default_factory=dict)
    salt: str = Field(
        default="",
        max_length=100,
        description="mixed into the assignment hash; change it to draw a new assignment for "
        "future entrants (journeys keep the arm they got)",
    )


class Goal(_Strict):
    event: EventType
    within: Duration


class Campaign(_Strict):
    """campaigns/<id>.yaml."""

    id: Identifier
    name: str = Field(min_length=1)
    kind: Literal["marketing", "transactional"]
    status: Literal["active", "paused"] = Field(
        default="active",
        description="paused: enrols no one and holds journeys; `campaigns pause|resume` "
        "overrides it from the database without a deploy",
    )
    trigger: Trigger
    steps: tuple[Step, ...] = ()
    exit_on: tuple[EventType, ...] = ()
    reentry_after: Duration | None = Field(
        default=None,
        description="after entering, not again for this long; default: again once the journey "
        "ended, never twice for one trigger instance (event, cart version, firing, birthday year)",
    )
    goal: Goal | None = None
    experiment: Experiment | None = None

    @model_validator(mode="after")
    def _one_journey(self) -> Campaign:
        variants = self.experiment.variants if self.experiment else {}
        if self.steps and variants:
            raise field_error(
                "give steps either at the top or in experiment.variants, not both", at=("steps",)
            )
        if not self.steps and not variants:
            raise field_error(
                "a campaign needs steps, or experiment.variants with steps", at=("steps",)
            )
        return self

    def journeys(self) -> Iterator[tuple[Loc, tuple[Step, ...]]]:
        """Each sequence of steps with its location: the top-level one or one per variant."""
        if self.steps:
            yield ("steps",), self.steps
        for name, variant in (self.experiment.variants if self.experiment else {}).items():
            yield ("experiment", "variants", name, "steps"), variant.steps


def step_label(step: Step) -> str:
    """What a step does in a few words: ``send:cart-coupon``, ``wait:23h``, ``award_points:500``."""
    if step.send is not None:
        return f"send:{step.send.template}"
    if step.issue_coupon is not None:
        return f"issue_coupon:{step.issue_coupon.coupon}"
    if step.award_points is not None:
        return f"award_points:{step.award_points.points}"
    assert step.wait is not None
    return f"wait:{_duration_text(step.wait)}"


def _duration_text(value: Any) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def step_ids(steps: tuple[Step, ...]) -> list[str]:
    """Each step's id: its ``id:``, else its label (``send:welcome``), with ``#2`` on a repeat.

    Journeys store the id of the step they are at, so an edit that inserts, removes or reorders
    other steps leaves them where they were (docs/campaigns.md, "Editing a running campaign").
    """
    seen: dict[str, int] = {}
    ids: list[str] = []
    for step in steps:
        base = step.id or step_label(step)
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return ids
