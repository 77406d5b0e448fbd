"""The onboarding checklist (product: sign-up and onboarding): the steps a new firm walks, each
computed from the real state (Clio connected, the two Stripe accounts ready, the sender and
the SES identity verified) or, where nothing can tell, from what the person marked (the
templates reviewed). A step the person skipped stays skipped until they mark it again; a step
the state says is done is done, whatever was marked. Pure rules, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class StepId(StrEnum):
    CLIO = "clio"
    TRUST_ACCOUNT = "trust_account"
    OPERATING_ACCOUNT = "operating_account"
    SENDER = "sender"
    TEMPLATES = "templates"
    DONE = "done"


class StepStatus(StrEnum):
    DONE = "done"
    TODO = "todo"
    SKIPPED = "skipped"


class Mark(StrEnum):
    """What a person may record on a step."""

    DONE = "done"
    SKIPPED = "skipped"
    TODO = "todo"  # undo a skip (or a "reviewed")


TITLES = {
    StepId.CLIO: "Connect Clio",
    StepId.TRUST_ACCOUNT: "Connect the trust account to Stripe",
    StepId.OPERATING_ACCOUNT: "Connect the operating account to Stripe",
    StepId.SENDER: "Sender name, reply-to and email identity",
    StepId.TEMPLATES: "Review the email templates",
    StepId.DONE: "Done: go to Invoices",
}
# Steps only a person can say are done (nothing in the state shows a review happened).
MARKABLE_DONE = frozenset({StepId.TEMPLATES})
ORDER = tuple(StepId)


@dataclass(frozen=True)
class Step:
    id: StepId
    status: StepStatus
    detail: str
    # "state" when the state decided, "person" when a mark did.
    decided_by: str
    can_mark_done: bool

    @property
    def title(self) -> str:
        return TITLES[self.id]


@dataclass(frozen=True)
class Checklist:
    steps: tuple[Step, ...]
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def current(self) -> StepId:
        """The first step neither done nor skipped (`done` once every other one is)."""
        return next((s.id for s in self.steps if s.status is StepStatus.TODO), StepId.DONE)

    @property
    def complete(self) -> bool:
        return self.current is StepId.DONE


def step(step_id: StepId, done_by_state: bool, mark: Mark | None, detail: str) -> Step:
    if done_by_state:
        return Step(step_id, StepStatus.DONE, detail, "state", step_id in MARKABLE_DONE)
    if mark is Mark.SKIPPED:
        return Step(step_id, StepStatus.SKIPPED, detail, "person", step_id in MARKABLE_DONE)
    if mark is Mark.DONE and step_id in MARKABLE_DONE:
        return Step(step_id, StepStatus.DONE, detail, "person", True)
    return Step(step_id, StepStatus.TODO, detail, "state", step_id in MARKABLE_DONE)


def final_step(before: list[Step]) -> Step:
    waiting = [s for s in before if s.status is StepStatus.TODO]
    if waiting:
        names = "; ".join(s.title for s in waiting)
        return Step(StepId.DONE, StepStatus.TODO, f"Still to do: {names}.", "state", False)
    return Step(
        StepId.DONE, StepStatus.DONE, "Everything is set up: go to Invoices.", "state", False
    )


def check_mark(step_id: StepId, mark: Mark) -> None:
    from billbridge.domain.errors import RuleViolation

    if step_id is StepId.DONE:
        raise RuleViolation("The last step is done when the others are.", code="step_not_markable")
    if mark is Mark.DONE and step_id not in MARKABLE_DONE:
        raise RuleViolation(
            f"{TITLES[step_id]} is done once it really is: it can only be skipped.",
            field="status",
            code="step_not_markable",
        )
