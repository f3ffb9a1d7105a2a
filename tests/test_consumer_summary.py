"""What the top of the consumer page is made of, on hand-made journeys: steps in the order
they happened (code issuance where the ledger recorded it, whatever its signing time),
the few key steps, the one verdict, Beijing time, and bad codes explained in Chinese."""

from __future__ import annotations

import pytest

from api.codes.i18n import Translator
from api.codes.pages import problem_text, when
from api.codes.summary import key_steps, origin_of, verdict_of
from traceability.codes import CodeError
from traceability.codes.copies import Verdict, Warning
from traceability.codes.journey import Journey, Party, Step, in_order

PARTY = Party("org", {"en": "Org", "zh": "机构"}, "admin", "f" * 64)


def step(kind: str, time: str, log_index: int, **extra) -> Step:
    return Step(kind, time, PARTY, f"{log_index:064x}", log_index + 1, log_index, **extra)


def test_codes_go_where_the_ledger_recorded_them_not_by_their_signing_time() -> None:
    events = [
        step("retail", "2026-11-08T10:00:00+08:00", 6),
        step("origin", "2026-11-03T07:30:00+08:00", 0),
        step("packing", "2026-11-05T10:30:00+08:00", 3),
        step("harvest", "2026-11-03T16:00:00+08:00", 1),
    ]
    issued_today = step("codes", "2026-12-02T08:00:00.000Z", 2)  # signed long after
    ordered = in_order(events, [issued_today])
    assert [s.kind for s in ordered] == ["origin", "harvest", "codes", "packing", "retail"]
    late = step("codes", "2026-11-01T00:00:00.000Z", 9)  # recorded after everything
    assert in_order(events, [late])[-1] is late


def test_key_steps_are_three_to_five_in_order_first_and_last_included() -> None:
    kinds = ["origin", "harvest", "codes", "packing", "inspection", "packing", "shipping"]
    kinds += ["receiving", "retail"]
    steps = [step(k, f"2026-11-0{i + 1}T08:00:00+08:00", i) for i, k in enumerate(kinds)]
    journey = Journey(steps, [], [])
    chosen = key_steps(journey)
    assert [s.kind for s in chosen] == ["origin", "harvest", "inspection", "shipping", "retail"]
    short = Journey(steps[:2], [], [])
    assert [s.kind for s in key_steps(short)] == ["origin", "harvest"]
    four = Journey([steps[0], steps[3], steps[5], steps[8]], [], [])
    assert len(key_steps(four)) == 3 and key_steps(four)[-1].kind == "retail"
    assert key_steps(None) == []


def test_origin_is_the_first_step_that_says_where() -> None:
    nowhere = step("production", "2026-11-01T08:00:00+08:00", 0)
    plot = step("origin", "2026-11-02T08:00:00+08:00", 1, region="CN-JX", place="P07")
    assert origin_of(Journey([nowhere, plot], [], [])) is plot
    assert origin_of(None) is None


def test_one_verdict_a_recall_outranks_a_copy_which_outranks_genuine() -> None:
    copied = Verdict(False, 9, "2026-11-20T01:00:00Z", [Warning("many_scans", {})])
    clean = Verdict(True, 1, None)
    assert verdict_of("genuine", object(), copied) == "recalled"  # type: ignore[arg-type]
    assert verdict_of("genuine", None, copied) == "copied"
    assert verdict_of("genuine", None, clean) == "genuine"
    assert verdict_of("lot", None, None) == "lot"


@pytest.mark.parametrize(
    ("recorded", "shown"),
    [
        ("2026-11-12T01:10:00.000Z", "2026-11-12 09:10"),
        ("2026-11-12T08:00:00+08:00", "2026-11-12 08:00"),
        ("2026-11-12T20:30:00-05:00", "2026-11-13 09:30"),
    ],
)
def test_every_time_is_beijing_time(recorded: str, shown: str) -> None:
    assert when(recorded) == shown


def test_a_bad_code_is_explained_in_chinese_without_the_rule_name() -> None:
    error = CodeError("/01", "gtin-check-digit", "check digit should be 6, not 7")
    zh = problem_text(error, Translator("zh"))
    assert "校验位" in zh and "gtin-check-digit" not in zh and "check digit" not in zh
    assert problem_text(error, Translator("en")) == "check digit should be 6, not 7"
    unknown = CodeError("/01", "some-new-rule", "whatever")
    assert problem_text(unknown, Translator("zh")) == Translator("zh")("rule.other")
