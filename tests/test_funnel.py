from datetime import UTC, datetime, timedelta

import pytest

from dripengine.exceptions import FunnelError
from dripengine.funnel.rules import ExistingEnrollment, decide_reentry, plan_recycle
from dripengine.stages import LEGAL_MOVES, RECYCLABLE, STAGES, check_move, check_stage

REASONS = {
    "no_budget": ("mql", "sal", "sql", "opportunity"),
    "chose_competitor": ("sql", "opportunity"),
}
NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)


def plan(**overrides):  # type: ignore[no-untyped-def]
    args = dict(
        email="jane@acme.example",
        current_stage=None,
        declared_from="sql",
        reason="no_budget",
        reason_stages=REASONS,
        suppressed_because=None,
    )
    args.update(overrides)
    return plan_recycle(**args)


def test_every_stage_has_moves_and_moves_name_stages() -> None:
    assert set(LEGAL_MOVES) == set(STAGES)
    for targets in LEGAL_MOVES.values():
        assert targets <= set(STAGES)


@pytest.mark.parametrize("stage", RECYCLABLE)
def test_recyclable_stages_may_move_to_recycled(stage: str) -> None:
    check_move(stage, "recycled")


def test_illegal_move_names_the_allowed_ones() -> None:
    with pytest.raises(
        FunnelError, match=r"cannot move from customer to recycled \(from customer: evangelist\)"
    ):
        check_move("customer", "recycled")


def test_unknown_stage_lists_accepted() -> None:
    with pytest.raises(FunnelError, match='"prospect" is not a stage .*subscriber, lead, mql'):
        check_stage("prospect")
    assert check_stage(" SQL ") == "sql"


def test_new_lead_with_declared_stage() -> None:
    result = plan()
    assert (result.from_stage, result.reason, result.previous_stage) == ("sql", "no_budget", None)


def test_stored_stage_used_when_not_declared() -> None:
    assert plan(current_stage="opportunity", declared_from=None).from_stage == "opportunity"


def test_new_lead_without_from_is_refused() -> None:
    with pytest.raises(FunnelError, match="new to dripengine: say which stage .* --from"):
        plan(declared_from=None)


@pytest.mark.parametrize("stage", ["customer", "evangelist"])
def test_customers_are_refused(stage: str) -> None:
    with pytest.raises(FunnelError, match=f"is a {stage}: customers are not recycled"):
        plan(current_stage=stage)


def test_suppressed_address_is_refused() -> None:
    with pytest.raises(FunnelError, match=r"suppressed \(unsubscribe on 01 Nov 2026\)"):
        plan(suppressed_because="unsubscribe on 01 Nov 2026")


def test_reason_must_be_in_sla_and_apply_to_stage() -> None:
    with pytest.raises(
        FunnelError, match='"broke" is not a recycle reason .*chose_competitor, no_budget'
    ):
        plan(reason="broke")
    with pytest.raises(
        FunnelError, match='reason "chose_competitor" for sql, opportunity only, not for MQL'
    ):
        plan(reason="chose_competitor", declared_from="mql")


def test_only_given_back_stages_recycle() -> None:
    with pytest.raises(FunnelError, match="only leads sales gave back are recycled"):
        plan(declared_from="lead")


def reentry(policy="restart", cooldown=0, max_recycles=None, previous=0, existing=None):  # type: ignore[no-untyped-def]
    return decide_reentry(
        policy=policy,
        cooldown_days=cooldown,
        max_recycles=max_recycles,
        previous_recycles=previous,
        existing=existing,
        now=NOW,
    )


def test_first_time_enrolls() -> None:
    assert reentry().action == "enroll"


def test_max_recycles_denies() -> None:
    decision = reentry(max_recycles=2, previous=2)
    assert decision.action == "deny"
    assert "recycled 2 times already (the campaign allows 2)" in decision.why
    assert reentry(max_recycles=2, previous=1).action == "enroll"


def test_cooldown_denies_until_it_ends() -> None:
    entered = NOW - timedelta(days=10)
    existing = ExistingEnrollment("completed", entered, None)
    decision = reentry(cooldown=30, existing=existing)
    assert decision.action == "deny"
    assert "until 13 Dec 2026" in decision.why
    assert reentry(cooldown=5, existing=existing).action == "restart"


@pytest.mark.parametrize(
    ("policy", "status", "step", "action"),
    [
        ("restart", "active", "b", "restart"),
        ("restart", "completed", None, "restart"),
        ("deny", "exited", "b", "deny"),
        ("resume", "active", "b", "keep"),
        ("resume", "exited", "b", "resume"),
        ("resume", "completed", None, "restart"),
    ],
)
def test_reentry_policies(policy: str, status: str, step: str | None, action: str) -> None:
    existing = ExistingEnrollment(status, NOW - timedelta(days=90), step)
    assert reentry(policy=policy, existing=existing).action == action
