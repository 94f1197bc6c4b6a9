"""Decision 766 service index against INDICATORS.md §4.2–4.5 and hand calculations."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from ioc.errors import FormulaInputError
from ioc.formulas.service_index import (
    DVCQG_2025_07,
    QD766_2022,
    FormulaSet,
    Group,
    Period,
    ScoreBasis,
    SubIndicator,
    SubScore,
    formula_set_for,
    published_score,
    score_counts,
    score_dossier_sync,
    score_payment,
    score_payment_counts,
    score_ratio,
    score_receiving_satisfaction,
    service_index,
    service_index_from_groups,
)

D = Decimal
FS = DVCQG_2025_07


# §4.4 test vectors.
@pytest.mark.parametrize(
    ("key", "ratio_pct", "expected"),
    [
        ("ON_TIME_RATE", "95", "19.00"),  # 2.1: 20 × 95/100
        ("PUBLISH_ON_TIME", "97.5", "5.85"),  # 1.1: 6 × 0.975
        ("REUSED_DIGITIZED_DATA", "60", "1.50"),  # 4.3: 2 × 60/80
        ("DOSSIER_RECEIVING_SATISFACTION", "81", "5.40"),  # 5.4: 6 × 81/90
        ("DOSSIER_RECEIVING_SATISFACTION", "95", "6.00"),  # 5.4: capped at 6
        ("REUSED_DIGITIZED_DATA", "80", "2.00"),  # 4.3 at its threshold: 2 × 80/80
        ("PUBLISH_ON_TIME", "0", "0.00"),
    ],
)
def test_section_4_4_ratio_vectors(key: str, ratio_pct: str, expected: str) -> None:
    result = score_ratio(FS.sub_indicator(key), D(ratio_pct))
    assert result.score == D(expected)
    assert result.basis is ScoreBasis.FORMULA


def test_section_4_4_payment_vector() -> None:
    # 6 × 0.5 + min(2, 2.5 × 0.6) + 2.5 × 0.4 = 3 + 1.5 + 1.0 = 5.50
    result = score_payment(FS.sub_indicator("ONLINE_PAYMENT"), D("0.5"), D("0.6"), D("0.4"))
    assert result.score == D("5.50")


@pytest.mark.parametrize(
    ("a", "b", "c", "expected"),
    [
        ("1", "0.8", "0", "8.00"),  # 6 + min(2, 2.0) + 0
        ("0", "1", "0", "2.00"),  # B term capped at 2: min(2, 2.5)
        ("1", "1", "1", "10.00"),  # 6 + 2 + 2.5 = 10.5, capped at P_max 10 (module rule)
        ("0", "0", "0", "0.00"),
    ],
)
def test_payment_caps(a: str, b: str, c: str, expected: str) -> None:
    result = score_payment(FS.sub_indicator("ONLINE_PAYMENT"), D(a), D(b), D(c))
    assert result.score == D(expected)


def test_payment_from_counts_zero_denominators() -> None:
    # A = 50/100 = 0.5; no procedures with fees → B = C = 0 (§4.3): 6 × 0.5 = 3.00
    result = score_payment_counts(
        FS.sub_indicator("ONLINE_PAYMENT"),
        dossiers_paid_online=50,
        dossiers_with_fee=100,
        procedures_with_online_payment=0,
        procedures_fee_synced=0,
        procedures_with_fees=0,
    )
    assert result.score == D("3.00")


@pytest.mark.parametrize(
    ("key", "numerator", "denominator", "expected"),
    [
        ("ON_TIME_RATE", 190, 200, "19.00"),  # 95 % → §4.4 vector
        ("ON_TIME_RATE", 2, 3, "13.33"),  # 20 × 2/3 = 13.333…
        ("PUBLISH_ON_TIME", 1, 8, "0.75"),  # 6 × 0.125
        # 6 × 7/16 = 2.625 exactly: ROUND_HALF_UP gives 2.63 (half-even would give 2.62).
        ("PUBLISH_ON_TIME", 7, 16, "2.63"),
        ("REUSED_DIGITIZED_DATA", 9, 10, "2.00"),  # 90 % ≥ T = 80 % → full 2 points
    ],
)
def test_counts(key: str, numerator: int, denominator: int, expected: str) -> None:
    assert score_counts(FS.sub_indicator(key), numerator, denominator).score == D(expected)


def test_ratio_is_reported_rounded() -> None:
    result = score_counts(FS.sub_indicator("ON_TIME_RATE"), 2, 3)
    assert result.ratio_pct == D("66.67")


@pytest.mark.parametrize(
    ("key", "expected", "basis"),
    [
        ("PAKN_ON_TIME", "6.00", ScoreBasis.ZERO_DENOMINATOR_RULE),  # no PAKN → 6 (§4.3)
        ("PAKN_SATISFACTION", "6.00", ScoreBasis.ZERO_DENOMINATOR_RULE),  # no PAKN → 6
        ("DOSSIER_RECEIVING_SATISFACTION", "0.00", ScoreBasis.ZERO_DENOMINATOR_RULE),  # → 0
    ],
)
def test_zero_denominator_rules(key: str, expected: str, basis: ScoreBasis) -> None:
    result = score_counts(FS.sub_indicator(key), 0, 0)
    assert result.score == D(expected)
    assert result.basis is basis
    assert result.ratio_pct is None


def test_zero_denominator_undefined_elsewhere() -> None:
    with pytest.raises(FormulaInputError, match=r"ON_TIME_RATE \(2\.1\).*denominator of 0"):
        score_counts(FS.sub_indicator("ON_TIME_RATE"), 0, 0)


def test_receiving_satisfaction_from_counts() -> None:
    # 100 received, 10 overdue, 9 with PAKN/dislike: R = 100 − 19 = 81 % → 6 × 81/90 = 5.40
    result = score_receiving_satisfaction(
        FS.sub_indicator("DOSSIER_RECEIVING_SATISFACTION"),
        received=100,
        overdue=10,
        pakn_or_dislike=9,
    )
    assert result.ratio_pct == D("81.00")
    assert result.score == D("5.40")


def test_receiving_satisfaction_floors_at_zero() -> None:
    # Overlapping counts: 60 % + 50 % > 100 % → R floored at 0 (module rule).
    result = score_receiving_satisfaction(
        FS.sub_indicator("DOSSIER_RECEIVING_SATISFACTION"),
        received=10,
        overdue=6,
        pakn_or_dislike=5,
    )
    assert result.ratio_pct == D("0.00")
    assert result.score == D("0.00")


def test_dossier_sync_uses_larger_denominator() -> None:
    # max(120, 150) = 150; 135/150 = 90 % → 6 × 0.9 = 5.40
    result = score_dossier_sync(
        FS.sub_indicator("DOSSIER_SYNC"),
        synced=135,
        received_reporting=120,
        received_dvcqg=150,
        last_year_total=9999,
        period=Period.MONTH,
    )
    assert result.score == D("5.40")
    assert result.basis is ScoreBasis.FORMULA


@pytest.mark.parametrize(
    ("period", "synced", "expected_pct", "expected"),
    [
        (Period.MONTH, 90, "90.00", "5.40"),  # 1200 / 12 = 100; 90/100 → 6 × 0.9
        (Period.QUARTER, 150, "50.00", "3.00"),  # 1200 / 4 = 300; 150/300 → 6 × 0.5
        (Period.MONTH, 130, "130.00", "6.00"),  # above the estimate: R 130 %, score capped
    ],
)
def test_dossier_sync_fallback(
    period: Period, synced: int, expected_pct: str, expected: str
) -> None:
    result = score_dossier_sync(
        FS.sub_indicator("DOSSIER_SYNC"),
        synced=synced,
        received_reporting=0,
        received_dvcqg=0,
        last_year_total=1200,
        period=period,
    )
    assert result.basis is ScoreBasis.FALLBACK_DENOMINATOR
    assert result.ratio_pct == D(expected_pct)
    assert result.score == D(expected)


def test_dossier_sync_nothing_at_all_is_undefined() -> None:
    with pytest.raises(FormulaInputError, match="last_year_total 0"):
        score_dossier_sync(
            FS.sub_indicator("DOSSIER_SYNC"),
            synced=0,
            received_reporting=0,
            received_dvcqg=0,
            last_year_total=0,
            period=Period.QUARTER,
        )


@pytest.mark.parametrize(
    ("numerator", "denominator", "match"),
    [
        (11, 10, "numerator 11 exceeds denominator 10"),
        (-1, 10, "numerator must be a non-negative integer, got -1"),
        (True, 10, "numerator must be a non-negative integer, got True"),
    ],
)
def test_bad_counts_rejected(numerator: int, denominator: int, match: str) -> None:
    with pytest.raises(FormulaInputError, match=match):
        score_counts(FS.sub_indicator("ON_TIME_RATE"), numerator, denominator)


@pytest.mark.parametrize("ratio", [D("100.01"), D("-1"), D("NaN"), float("inf")])
def test_bad_ratio_rejected(ratio: Decimal | float) -> None:
    with pytest.raises(FormulaInputError, match="ratio_pct"):
        score_ratio(FS.sub_indicator("ON_TIME_RATE"), ratio)


def test_rule_mismatch_rejected() -> None:
    with pytest.raises(FormulaInputError, match="ONLINE_SERVICE is scored by rule published"):
        score_ratio(FS.sub_indicator("ONLINE_SERVICE"), 50)


def test_published_score_checked_against_maximum() -> None:
    sub = FS.sub_indicator("ONLINE_SERVICE")
    assert published_score(sub, D("11.5")).score == D("11.50")
    with pytest.raises(FormulaInputError, match=r"12\.5 is outside 0–12"):
        published_score(sub, D("12.5"))


def test_formula_sets_match_section_4_2() -> None:
    # §4.2: 18 + 20 + 22 + 22 + 18 = 100; both sets share these maxima.
    for fs in (QD766_2022, DVCQG_2025_07):
        assert [fs.max_for(g) for g in Group] == [18, 20, 22, 22, 18]
    # §4.2: group 3 on DVCQG = online services 12 + online payment 10.
    group3 = [s.max_points for s in FS.sub_indicators if s.group is Group.ONLINE_SERVICE]
    assert sorted(group3) == [10, 12]


def test_formula_set_rejects_split_not_summing_to_group() -> None:
    # Replacing 1.3 (2 points) by a 1-point item leaves group 1 at 6 + 4 + 1 + 6 = 17.
    shrunk = SubIndicator(key="X", code="1.3", group=Group.TRANSPARENCY, max_points=D(1))
    kept = tuple(s for s in FS.sub_indicators if s.key != "PUBLIC_CONTENT_FULL")
    with pytest.raises(FormulaInputError, match="group TRANSPARENCY items sum to 17, not 18"):
        FormulaSet(
            version="broken",
            effective_from=date(2030, 1, 1),
            group_max=FS.group_max,
            sub_indicators=(*kept, shrunk),
            source="test",
        )


@pytest.mark.parametrize(
    ("on", "version"),
    [
        (date(2022, 6, 23), "766/2022"),  # signed and effective 23 Jun 2022 (§4.1)
        (date(2025, 6, 30), "766/2022"),
        (date(2025, 7, 1), "dvcqg/2025-07"),
        (date(2026, 3, 1), "dvcqg/2025-07"),
    ],
)
def test_formula_set_by_date(on: date, version: str) -> None:
    assert formula_set_for(on).version == version


def test_formula_set_by_aware_datetime() -> None:
    # 2025-06-30 17:30 UTC is 2025-07-01 00:30 in Vietnam: the July 2025 set applies.
    assert formula_set_for(datetime(2025, 6, 30, 17, 30, tzinfo=UTC)).version == "dvcqg/2025-07"
    with pytest.raises(FormulaInputError, match="aware datetime"):
        formula_set_for(datetime(2025, 7, 1, 12, 0))  # noqa: DTZ001


def test_no_formula_set_before_the_decision() -> None:
    with pytest.raises(FormulaInputError, match="2022-06-22"):
        formula_set_for(date(2022, 6, 22))


def test_2022_set_has_no_split() -> None:
    with pytest.raises(FormulaInputError, match="Open item 2"):
        QD766_2022.sub_indicator("ON_TIME_RATE")
    with pytest.raises(FormulaInputError, match="Open item 2"):
        service_index(QD766_2022, [])


def _full_marks() -> list[SubScore]:
    scores = []
    for sub in FS.sub_indicators:
        if sub.key == "ONLINE_SERVICE":
            scores.append(published_score(sub, sub.max_points))
        elif sub.key == "ONLINE_PAYMENT":
            scores.append(score_payment(sub, 1, 1, 1))
        else:
            scores.append(score_ratio(sub, 100))
    return scores


def test_full_marks_total_100() -> None:
    result = service_index(FS, _full_marks())
    assert result.total == D("100.00")
    assert [g.score for g in result.groups] == [18, 20, 22, 22, 18]


def test_group_is_sum_of_items() -> None:
    # Replace three items of the full-marks set by the §4.4 vectors:
    #   2.1 at 95 % → 19.00 (group 2: 20 → 19)
    #   4.3 at 60 % → 1.50 (group 4: 22 − 2 + 1.5 = 21.5)
    #   5.4 at 81 % → 5.40 (group 5: 18 − 6 + 5.4 = 17.4)
    # total = 18 + 19 + 22 + 21.5 + 17.4 = 97.90
    replaced = {
        "ON_TIME_RATE": score_ratio(FS.sub_indicator("ON_TIME_RATE"), 95),
        "REUSED_DIGITIZED_DATA": score_ratio(FS.sub_indicator("REUSED_DIGITIZED_DATA"), 60),
        "DOSSIER_RECEIVING_SATISFACTION": score_ratio(
            FS.sub_indicator("DOSSIER_RECEIVING_SATISFACTION"), 81
        ),
    }
    scores = [replaced.get(s.key, s) for s in _full_marks()]
    result = service_index(FS, scores)
    assert [g.score for g in result.groups] == [
        D("18.00"),
        D("19.00"),
        D("22.00"),
        D("21.50"),
        D("17.40"),
    ]
    assert result.total == D("97.90")
    for group in result.groups:
        assert group.score == sum(item.score for item in group.items)


def test_missing_and_duplicate_items_rejected() -> None:
    scores = _full_marks()
    with pytest.raises(FormulaInputError, match="no score for PUBLISH_ON_TIME"):
        service_index(FS, scores[1:])
    with pytest.raises(FormulaInputError, match="PUBLISH_ON_TIME scored twice"):
        service_index(FS, [*scores, scores[0]])


def test_index_from_published_groups() -> None:
    # 17.5 + 19.2 + 20 + 18.75 + 18 = 93.45
    groups: dict[Group, Decimal] = {
        Group.TRANSPARENCY: D("17.5"),
        Group.PROCESSING: D("19.2"),
        Group.ONLINE_SERVICE: D("20"),
        Group.DIGITISATION: D("18.75"),
        Group.SATISFACTION: D("18"),
    }
    assert service_index_from_groups(QD766_2022, groups).total == D("93.45")
    with pytest.raises(FormulaInputError, match=r"group PROCESSING score 20\.5 is outside 0–20"):
        service_index_from_groups(QD766_2022, {**groups, Group.PROCESSING: D("20.5")})
    missing: dict[Group, Decimal] = {g: v for g, v in groups.items() if g is not Group.SATISFACTION}
    with pytest.raises(FormulaInputError, match="must cover groups 1–5"):
        service_index_from_groups(QD766_2022, missing)
