"""Facilitator rotation as tables: determinism, "can't make it", the 72 h hand-over, bad input."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from dropin.domain.rotation import (
    Assignment,
    Facilitator,
    RotaEntry,
    RotationPolicy,
    Slot,
    promote_co_to_lead,
    reassign,
)
from tests.domain.rotakit import (
    AWAY_MOST,
    DEFAULT,
    JOINS_AT_12,
    NO_GAP,
    NOW,
    SLOTS,
    TZ,
    day_of,
    entry,
    fac,
    new,
    plan,
)

# -- determinism --------------------------------------------------------------------------------


def _busy_group() -> tuple[list[Facilitator], list[RotaEntry]]:
    facs = [
        fac("a", weight=2),
        fac("b", max_per_quarter=2),
        fac("c", unavailable=AWAY_MOST),
        new("n"),
        fac("z", joined_at=JOINS_AT_12),
        fac("e", weight=0.5),
    ]
    held = [
        RotaEntry("h1", NOW - timedelta(days=60), "a", "n"),
        RotaEntry("h2", NOW - timedelta(days=30), "b", "c"),
    ]
    return facs, held


def test_same_inputs_same_rota() -> None:
    facs, held = _busy_group()
    assert plan(facs, history=held) == plan(facs, history=held)


@pytest.mark.parametrize("seed", range(5))
def test_input_order_does_not_matter(seed: int) -> None:
    facs, held = _busy_group()
    expected = plan(facs, history=held)
    rng = random.Random(seed)
    facs2, held2, slots2 = list(facs), list(held), list(SLOTS)
    for seq in (facs2, held2, slots2):
        rng.shuffle(seq)
    assert plan(facs2, slots2, history=held2) == expected


def test_output_is_in_chronological_order() -> None:
    rota = plan([fac(m) for m in "abcd"], list(reversed(SLOTS[:5])))
    assert [a.session_id for a in rota] == [s.session_id for s in SLOTS[:5]]


def test_planning_in_steps_equals_planning_at_once() -> None:
    facs = [fac(m) for m in "abcde"]
    whole = plan(facs, SLOTS[:10])
    first = plan(facs, SLOTS[:4])
    rest = plan(facs, SLOTS[4:10], history=[entry(a) for a in first])
    assert first + rest == whole


# -- "can't make it" and the 72 h handoff -------------------------------------------------------


def test_reassign_excludes_and_keeps_the_other_one() -> None:
    facs = [fac(m) for m in "abcdefg"]
    rota = plan(facs, SLOTS[:6])
    target = rota[3]
    assert target.lead is not None and target.co is not None
    history = [entry(a) for a in rota]  # the session's own entry is ignored
    again = reassign(
        SLOTS[3], facs, history, DEFAULT, now=NOW, tz=TZ, exclude={target.lead}, keep=target.co
    )
    assert target.lead not in (again.lead, again.co)
    assert target.co in (again.lead, again.co)
    assert again.lead is not None and again.co is not None
    # Its neighbours' facilitators rest, as ever.
    assert again.relaxed == ()
    for near in (rota[2], rota[4]):
        assert not {again.lead, again.co} & {near.lead, near.co}


def test_reassign_without_keep_reruns_the_session() -> None:
    facs = [fac(m) for m in "abcd"]
    [x] = plan(facs, SLOTS[:1])
    assert (x.lead, x.co) == ("a", "b")
    y = reassign(SLOTS[0], facs, [], DEFAULT, now=NOW, tz=TZ, exclude={"a"})
    assert (y.lead, y.co) == ("b", "c")


def test_reassign_keeps_a_new_co_as_co_under_an_experienced_lead() -> None:
    facs = [fac("a"), new("n"), new("m"), fac("b"), fac("c")]
    z = reassign(SLOTS[0], facs, [], NO_GAP, now=NOW, tz=TZ, exclude={"a", "b"}, keep="n")
    assert (z.lead, z.co, z.relaxed) == ("c", "n", ())


def test_reassign_ignores_keep_when_they_no_longer_pass_the_rules() -> None:
    away = fac("k", unavailable=frozenset({day_of(SLOTS[0])}))
    z = reassign(
        SLOTS[0],
        [away, *(fac(m) for m in "abc")],
        [],
        DEFAULT,
        now=NOW,
        tz=TZ,
        exclude={"a"},
        keep="k",
    )
    assert (z.lead, z.co) == ("b", "c")


def test_reassign_with_nobody_left() -> None:
    facs = [fac("a"), new("n"), new("m"), fac("b")]
    z = reassign(SLOTS[0], facs, [], NO_GAP, now=NOW, tz=TZ, exclude={"a", "b"}, keep="n")
    assert (z.lead, z.co) == (None, None)
    assert "can't make it: a, b; new, with no experienced facilitator free to pair with: m, n" in (
        z.reason
    )


def test_promote_experienced_co() -> None:
    facs = [fac(m) for m in "abcd"]
    current = Assignment("s00", "a", "b")
    x = promote_co_to_lead(current, SLOTS[0], facs, [], DEFAULT, now=NOW, tz=TZ)
    assert x.lead == "b" and x.co not in (None, "a", "b")


def test_promote_a_new_co_who_never_co_facilitated_gets_an_experienced_lead_instead() -> None:
    facs = [fac("a"), new("n"), fac("c"), fac("d")]
    current = Assignment("s00", "a", "n")
    x = promote_co_to_lead(current, SLOTS[0], facs, [], DEFAULT, now=NOW, tz=TZ)
    assert x.co == "n" and x.lead in ("c", "d")


def test_promote_a_new_co_who_has_co_facilitated_needs_an_experienced_new_co() -> None:
    held = [RotaEntry("h", NOW - timedelta(days=40), "a", "n")]
    facs = [fac("a"), new("n"), new("m"), fac("d")]
    current = Assignment("s00", "a", "n")
    x = promote_co_to_lead(current, SLOTS[0], facs, held, NO_GAP, now=NOW, tz=TZ)
    assert (x.lead, x.co) == ("n", "d")


def test_promote_without_a_co_reruns_without_the_lead() -> None:
    facs = [fac("a"), fac("b"), fac("c")]
    current = Assignment("s00", "a", None)
    x = promote_co_to_lead(current, SLOTS[0], facs, [], DEFAULT, now=NOW, tz=TZ)
    assert "a" not in (x.lead, x.co) and x.lead is not None and x.co is not None


def test_promote_with_nobody_left_says_so() -> None:
    x = promote_co_to_lead(
        Assignment("s00", "a", "b"), SLOTS[0], [fac("a"), fac("b")], [], DEFAULT, now=NOW, tz=TZ
    )
    assert (x.lead, x.co, x.relaxed) == ("b", None, ("no_co",))
    assert "can't make it: a" in x.reason


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: plan([fac("a"), fac("a")], SLOTS[:1]), "appears twice"),
        (lambda: plan([fac("a")], [SLOTS[0], SLOTS[0]]), "appears twice"),
        (
            lambda: plan([fac("a")], SLOTS[:1], history=[RotaEntry("s00", NOW, "a", None)]),
            "already in the history",
        ),
        (lambda: plan([fac("a")], [Slot("x", NOW - timedelta(minutes=1))]), "before now"),
        (lambda: plan([fac("a")], [Slot("x", datetime(2027, 1, 1))]), "timezone-aware"),
        (lambda: fac("a", joined_at=datetime(2020, 1, 1)), "timezone-aware"),
        (lambda: fac("a", weight=0), "positive"),
        (lambda: fac("a", weight=float("nan")), "positive"),
        (lambda: RotationPolicy(window=timedelta(0)), "window"),
        (
            lambda: plan([fac("a")], SLOTS[:1], history=[RotaEntry("h", NOW, "a", "a")]),
            "same lead and co",
        ),
        (
            lambda: promote_co_to_lead(
                Assignment("other", "a", "b"), SLOTS[0], [], [], DEFAULT, now=NOW, tz=TZ
            ),
            "different sessions",
        ),
    ],
)
def test_bad_input_is_a_clear_error(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def test_inputs_are_not_mutated() -> None:
    facs, held = _busy_group()
    before = [replace(f) for f in facs], list(held)
    plan(facs, history=held)
    assert (facs, held) == before
