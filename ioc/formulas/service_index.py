"""Decision 766/QĐ-TTg (23 Jun 2022) service index, as computed on DVCQG (INDICATORS.md §4).

Five groups with fixed maxima (§4.2 [V], total 100); group score = Σ sub-indicator scores, total =
Σ group scores. Sub-indicators follow §4.3: default score ``P_max × min(1, R/T)`` with R the
ratio in %, T = 100 % unless the table gives a threshold; online payment is
``6·A + min(2, 2.5·B) + 2.5·C``.

Formula sets are versioned with an effective date (§4.5 design) and picked by date:

* ``766/2022`` from 23 Jun 2022: the group maxima of §4.2 only. The sub-point split of the 2022
  annex is not available (Open item 2), so this set scores groups, not sub-indicators.
* ``dvcqg/2025-07`` from 1 Jul 2025: the §4.3 split as observed on DVCQG. §4.5 says the portal
  gained "province, commune" scopes and new items (electronic certified copies, CSDL dân cư) after
  July 2025; no amending decision was found [U], so 1 Jul 2025 is our effective date, not a legal
  one. The split sums to every group maximum, which :class:`FormulaSet` checks.

Decisions where the text is silent or [U]:

* Each sub-indicator score is rounded to 2 decimals, ``ROUND_HALF_UP`` (the portal and the §4.4
  vectors show 2 decimals; half-up is the rounding a reader of the published table expects);
  group and total are exact sums of the rounded items, so displayed figures add up. Inside, the
  ratio is an exact fraction, so the only rounding is that one.
* Zero denominators: "no PAKN" gives full points to 5.1/5.2 and 5.3 (DVCQG API authoritative,
  §4.3 zero-PAKN conflict); 5.4 gives 0; payment ratios are 0; 1.4 falls back to last year's
  total ÷ 12 (month) or ÷ 4 (quarter). For every other item the text is silent, so the score is
  undefined and :class:`~ioc.errors.FormulaInputError` is raised.
* Online services 3.x (12 points): the formula is [U] ("not reproducible"), so the score must be
  the one DVCQG publishes (:func:`published_score`), checked against its maximum.
* Payment: with A = B = C = 1 the fitted formula gives 10.5 > P_max 10; the score is capped at 10.
* 5.4: R = 100 % − (overdue rate + PAKN/"dislike" rate) is floored at 0 % (the two counts may
  overlap). 4.2 uses T = 100 % (the business document's 80 % is not used); 4.4's slope is [U].
* Sub-indicator keys are the DVCQG names where §4.3 gives one; ``ON_TIME_RATE``,
  ``ONLINE_SERVICE``, ``ONLINE_PAYMENT``, ``POPULATION_DB_PROCEDURES``/``_DOSSIERS``,
  ``PAKN_ON_TIME`` and ``PAKN_SATISFACTION`` are ours. Display-only items (2.2, PAKN share by
  category) carry no points and are not modelled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from fractions import Fraction

from ioc.errors import FormulaInputError

__all__ = [
    "DVCQG_2025_07",
    "FORMULA_SETS",
    "QD766_2022",
    "FormulaSet",
    "Group",
    "GroupScore",
    "Period",
    "Rule",
    "ScoreBasis",
    "ServiceIndex",
    "SubIndicator",
    "SubScore",
    "ZeroDenominator",
    "formula_set_for",
    "published_score",
    "score_counts",
    "score_dossier_sync",
    "score_payment",
    "score_payment_counts",
    "score_ratio",
    "score_receiving_satisfaction",
    "service_index",
    "service_index_from_groups",
]

_CENT = Decimal("0.01")
_VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")
_HUNDRED = Fraction(100)


class Group(IntEnum):
    """The five groups of §4.2, numbered as in the decision."""

    TRANSPARENCY = 1  # Công khai, minh bạch
    PROCESSING = 2  # Tiến độ, kết quả giải quyết
    ONLINE_SERVICE = 3  # Cung cấp dịch vụ trực tuyến (incl. online payment)
    DIGITISATION = 4  # Số hóa hồ sơ
    SATISFACTION = 5  # Mức độ hài lòng


class Rule(Enum):
    """How a sub-indicator turns its inputs into points (§4.3)."""

    LINEAR = "linear"  # P_max × min(1, R/T)
    PAYMENT = "payment"  # 6·A + min(2, 2.5·B) + 2.5·C, capped at P_max
    PUBLISHED = "published"  # formula [U]: the DVCQG score is taken as given


class ZeroDenominator(Enum):
    """What a sub-indicator scores when its denominator is 0 (§4.3)."""

    FULL_POINTS = "full_points"
    ZERO_POINTS = "zero_points"
    UNDEFINED = "undefined"


class ScoreBasis(Enum):
    """Where a sub-indicator score came from."""

    FORMULA = "formula"
    ZERO_DENOMINATOR_RULE = "zero_denominator_rule"
    FALLBACK_DENOMINATOR = "fallback_denominator"
    PUBLISHED = "published"


class Period(Enum):
    """Assessment period, for the 1.4 fallback denominator (last year's total ÷ 12 or ÷ 4)."""

    MONTH = 12
    QUARTER = 4


@dataclass(frozen=True, slots=True)
class SubIndicator:
    """One scored sub-indicator of §4.3 with its maximum, threshold and zero rule."""

    key: str
    code: str
    group: Group
    max_points: Decimal
    rule: Rule = Rule.LINEAR
    threshold_pct: Decimal = Decimal(100)
    if_no_denominator: ZeroDenominator = ZeroDenominator.UNDEFINED
    evidence: str = ""


@dataclass(frozen=True, slots=True)
class FormulaSet:
    """A dated version of the 766 scoring: group maxima and (if known) sub-indicators."""

    version: str
    effective_from: date
    group_max: tuple[tuple[Group, Decimal], ...]
    sub_indicators: tuple[SubIndicator, ...]
    source: str
    total_max: Decimal = Decimal(100)

    def __post_init__(self) -> None:
        """Check that group maxima sum to the total and sub-indicators to their group."""
        groups = [g for g, _ in self.group_max]
        if sorted(groups) != list(Group):
            raise FormulaInputError(f"formula set {self.version}: groups {groups}")
        maxima = sum((m for _, m in self.group_max), Decimal(0))
        if maxima != self.total_max:
            raise FormulaInputError(
                f"formula set {self.version}: group maxima sum to {maxima}, not {self.total_max}"
            )
        keys = [s.key for s in self.sub_indicators]
        if len(keys) != len(set(keys)):
            raise FormulaInputError(f"formula set {self.version}: duplicate keys in {keys}")
        if not self.sub_indicators:
            return
        for group, maximum in self.group_max:
            items = sum((s.max_points for s in self.sub_indicators if s.group is group), Decimal(0))
            if items != maximum:
                raise FormulaInputError(
                    f"formula set {self.version}: group {group.name} items sum to {items}, "
                    f"not {maximum}"
                )

    def max_for(self, group: Group) -> Decimal:
        """Maximum points of ``group`` in this set."""
        return dict(self.group_max)[group]

    def sub_indicator(self, key: str) -> SubIndicator:
        """The sub-indicator ``key`` of this set."""
        if not self.sub_indicators:
            raise FormulaInputError(
                f"formula set {self.version} has no sub-indicator split "
                "(INDICATORS.md Open item 2); score its groups with service_index_from_groups"
            )
        for sub in self.sub_indicators:
            if sub.key == key:
                return sub
        raise FormulaInputError(f"formula set {self.version} has no sub-indicator {key!r}")


@dataclass(frozen=True, slots=True)
class SubScore:
    """Points of one sub-indicator; ``ratio_pct`` is R rounded to 2 decimals (None if none)."""

    key: str
    group: Group
    ratio_pct: Decimal | None
    score: Decimal
    max_points: Decimal
    basis: ScoreBasis


@dataclass(frozen=True, slots=True)
class GroupScore:
    """Score of one group: the sum of its items (empty when published at group level)."""

    group: Group
    score: Decimal
    max_points: Decimal
    items: tuple[SubScore, ...]


@dataclass(frozen=True, slots=True)
class ServiceIndex:
    """The 766 index of one unit: group scores and their total (at most 100)."""

    version: str
    groups: tuple[GroupScore, ...]
    total: Decimal
    max_points: Decimal


_766_GROUPS: tuple[tuple[Group, Decimal], ...] = (
    (Group.TRANSPARENCY, Decimal(18)),
    (Group.PROCESSING, Decimal(20)),
    (Group.ONLINE_SERVICE, Decimal(22)),
    (Group.DIGITISATION, Decimal(22)),
    (Group.SATISFACTION, Decimal(18)),
)


def _sub(
    key: str,
    code: str,
    group: Group,
    points: int,
    evidence: str,
    *,
    rule: Rule = Rule.LINEAR,
    threshold: int = 100,
    zero: ZeroDenominator = ZeroDenominator.UNDEFINED,
) -> SubIndicator:
    """One row of the §4.3 table."""
    return SubIndicator(
        key=key,
        code=code,
        group=group,
        max_points=Decimal(points),
        rule=rule,
        threshold_pct=Decimal(threshold),
        if_no_denominator=zero,
        evidence=evidence,
    )


_T, _P, _O, _D, _S = (
    Group.TRANSPARENCY,
    Group.PROCESSING,
    Group.ONLINE_SERVICE,
    Group.DIGITISATION,
    Group.SATISFACTION,
)
_FULL, _ZERO = ZeroDenominator.FULL_POINTS, ZeroDenominator.ZERO_POINTS

#: Decision 766 as signed: group maxima only (§4.2 [V]); the sub-point split is Open item 2.
QD766_2022 = FormulaSet(
    version="766/2022",
    effective_from=date(2022, 6, 23),
    group_max=_766_GROUPS,
    sub_indicators=(),
    source="Decision 766/QĐ-TTg, 23 Jun 2022 (INDICATORS.md §4.1, §4.2)",
)

#: The §4.3 split as computed on DVCQG after July 2025 (effective date is ours, §4.5 [U]).
DVCQG_2025_07 = FormulaSet(
    version="dvcqg/2025-07",
    effective_from=date(2025, 7, 1),
    group_max=_766_GROUPS,
    sub_indicators=(
        _sub("PUBLISH_ON_TIME", "1.1", _T, 6, "[S] fitted, 2,124 obs."),
        _sub("PUBLIC_UPDATE_ON_TIME", "1.2", _T, 4, "[V] points; [S] formula"),
        _sub("PUBLIC_CONTENT_FULL", "1.3", _T, 2, "[S]"),
        _sub("DOSSIER_SYNC", "1.4", _T, 6, "[S]; zero rule: last year ÷ 12 or ÷ 4"),
        _sub("ON_TIME_RATE", "2.1", _P, 20, "[V] points; [S] formula, 984 obs."),
        _sub("ONLINE_SERVICE", "3.x", _O, 12, "[U] formula", rule=Rule.PUBLISHED),
        _sub("ONLINE_PAYMENT", "3.5/3.6", _O, 10, "[S] fit, max error 0.014", rule=Rule.PAYMENT),
        _sub("ORIGINAL_RESULT_AVAILABLE", "4.1", _D, 6, "[S]"),
        _sub("SO_HOA", "4.2", _D, 4, "[S]; T = 100 (business document: 80)"),
        _sub("ELECTRONIC_CERTIFIED_COPY", "4.x", _D, 2, "[S] new after 7/2025"),
        _sub("REUSED_DIGITIZED_DATA", "4.3", _D, 2, "[S]", threshold=80),
        _sub("SYNCED_WITH_DVCQG_PERSONAL_STORAGE", "4.4", _D, 4, "[S] slope unverified"),
        _sub("POPULATION_DB_PROCEDURES", "4.5a", _D, 2, "[S] new after 7/2025"),
        _sub("POPULATION_DB_DOSSIERS", "4.5b", _D, 2, "[S] new after 7/2025"),
        _sub("PAKN_ON_TIME", "5.1/5.2", _S, 6, "[V] formula; [S] zero rule", zero=_FULL),
        _sub("PAKN_SATISFACTION", "5.3", _S, 6, "[V] formula; [S] zero rule", zero=_FULL),
        _sub(
            "DOSSIER_RECEIVING_SATISFACTION",
            "5.4",
            _S,
            6,
            "[V] points; [S] T = 90",
            threshold=90,
            zero=_ZERO,
        ),
    ),
    source="DVCQG implementation of 766/QĐ-TTg (INDICATORS.md §4.3, §4.5)",
)

#: Every known formula set, oldest first.
FORMULA_SETS: tuple[FormulaSet, ...] = (QD766_2022, DVCQG_2025_07)


def formula_set_for(on: date | datetime) -> FormulaSet:
    """The formula set in force on ``on`` (the latest one effective on or before it)."""
    if isinstance(on, datetime):
        # A moment is read as a calendar date in Vietnam time (UTC+7); naive ones are ambiguous.
        if on.tzinfo is None or on.utcoffset() is None:
            raise FormulaInputError(f"on must be a date or an aware datetime, got {on.isoformat()}")
        on = on.astimezone(_VIETNAM_TIME).date()
    in_force = [fs for fs in FORMULA_SETS if fs.effective_from <= on]
    if not in_force:
        raise FormulaInputError(
            f"no 766 formula set in force on {on.isoformat()}; the first is effective "
            f"{FORMULA_SETS[0].effective_from.isoformat()}"
        )
    return max(in_force, key=lambda fs: fs.effective_from)


def _fraction(value: Decimal | int | float, what: str) -> Fraction:
    if isinstance(value, bool):
        raise FormulaInputError(f"{what} must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise FormulaInputError(f"{what} must be finite, got {value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise FormulaInputError(f"{what} must be finite, got {value!r}")
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def _count(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FormulaInputError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def _round(value: Fraction) -> Decimal:
    """Round a non-negative exact value to 2 decimals, half up."""
    scaled = value * 100
    cents = math.floor(scaled + Fraction(1, 2))
    return (Decimal(cents) * _CENT).quantize(_CENT)


def _expect_rule(sub: SubIndicator, rule: Rule) -> None:
    if sub.rule is not rule:
        raise FormulaInputError(
            f"sub-indicator {sub.key} is scored by rule {sub.rule.value}, not {rule.value}"
        )


def _linear(sub: SubIndicator, ratio_pct: Fraction, basis: ScoreBasis) -> SubScore:
    """``P_max × min(1, R/T)`` (§4.3 default rule)."""
    share = min(Fraction(1), ratio_pct / Fraction(sub.threshold_pct))
    return SubScore(
        key=sub.key,
        group=sub.group,
        ratio_pct=_round(ratio_pct),
        score=_round(Fraction(sub.max_points) * share),
        max_points=sub.max_points,
        basis=basis,
    )


def _zero_denominator(sub: SubIndicator) -> SubScore:
    """Apply the sub-indicator's rule for an empty denominator."""
    if sub.if_no_denominator is ZeroDenominator.UNDEFINED:
        raise FormulaInputError(
            f"sub-indicator {sub.key} ({sub.code}) is not defined for a denominator of 0"
        )
    full = sub.if_no_denominator is ZeroDenominator.FULL_POINTS
    return SubScore(
        key=sub.key,
        group=sub.group,
        ratio_pct=None,
        score=sub.max_points.quantize(_CENT) if full else Decimal("0.00"),
        max_points=sub.max_points,
        basis=ScoreBasis.ZERO_DENOMINATOR_RULE,
    )


def score_ratio(sub: SubIndicator, ratio_pct: Decimal | int | float) -> SubScore:
    """Score a linear sub-indicator from its ratio R in percent (0–100)."""
    _expect_rule(sub, Rule.LINEAR)
    ratio = _fraction(ratio_pct, f"{sub.key} ratio_pct")
    if not 0 <= ratio <= _HUNDRED:
        raise FormulaInputError(f"{sub.key} ratio_pct must be within 0–100, got {ratio_pct}")
    return _linear(sub, ratio, ScoreBasis.FORMULA)


def score_counts(sub: SubIndicator, numerator: int, denominator: int) -> SubScore:
    """Score a linear sub-indicator from its numerator and denominator counts."""
    _expect_rule(sub, Rule.LINEAR)
    num = _count(numerator, f"{sub.key} numerator")
    den = _count(denominator, f"{sub.key} denominator")
    if den == 0:
        return _zero_denominator(sub)
    if num > den:
        raise FormulaInputError(
            f"{sub.key}: numerator {num} exceeds denominator {den}; a share cannot exceed 100 %"
        )
    return _linear(sub, Fraction(num, den) * _HUNDRED, ScoreBasis.FORMULA)


def score_dossier_sync(
    sub: SubIndicator,
    *,
    synced: int,
    received_reporting: int,
    received_dvcqg: int,
    last_year_total: int,
    period: Period,
) -> SubScore:
    """1.4: synced dossiers / max(received per reporting system, per DVCQG), with fallback."""
    _expect_rule(sub, Rule.LINEAR)
    num = _count(synced, f"{sub.key} synced")
    den = Fraction(
        max(
            _count(received_reporting, f"{sub.key} received_reporting"),
            _count(received_dvcqg, f"{sub.key} received_dvcqg"),
        )
    )
    basis = ScoreBasis.FORMULA
    if den == 0:
        # §4.3 1.4: both 0 → last year's total ÷ 12 (month) or ÷ 4 (quarter).
        den = Fraction(_count(last_year_total, f"{sub.key} last_year_total"), period.value)
        basis = ScoreBasis.FALLBACK_DENOMINATOR
        if den == 0:
            raise FormulaInputError(
                f"{sub.key}: no dossiers received (reporting 0, DVCQG 0) and last_year_total 0; "
                "the ratio is not defined"
            )
    # Synced may exceed the fallback estimate: R is reported as is, the score is capped.
    return _linear(sub, Fraction(num) / den * _HUNDRED, basis)


def score_receiving_satisfaction(
    sub: SubIndicator, *, received: int, overdue: int, pakn_or_dislike: int
) -> SubScore:
    """5.4: R = 100 % − (overdue rate + PAKN/"dislike" rate), floored at 0, T = 90 %."""
    _expect_rule(sub, Rule.LINEAR)
    total = _count(received, f"{sub.key} received")
    late = _count(overdue, f"{sub.key} overdue")
    flagged = _count(pakn_or_dislike, f"{sub.key} pakn_or_dislike")
    if total == 0:
        return _zero_denominator(sub)
    if late > total or flagged > total:
        raise FormulaInputError(
            f"{sub.key}: overdue {late} and pakn_or_dislike {flagged} must not exceed "
            f"received {total}"
        )
    ratio = max(Fraction(0), _HUNDRED - Fraction(late + flagged, total) * _HUNDRED)
    return _linear(sub, ratio, ScoreBasis.FORMULA)


def _payment(sub: SubIndicator, a: Fraction, b: Fraction, c: Fraction) -> SubScore:
    """``6·A + min(2, 2.5·B) + 2.5·C`` (§4.3 [S] fit), capped at P_max (module docstring)."""
    _expect_rule(sub, Rule.PAYMENT)
    points = 6 * a + min(Fraction(2), Fraction(5, 2) * b) + Fraction(5, 2) * c
    return SubScore(
        key=sub.key,
        group=sub.group,
        ratio_pct=None,
        score=_round(min(points, Fraction(sub.max_points))),
        max_points=sub.max_points,
        basis=ScoreBasis.FORMULA,
    )


def score_payment(
    sub: SubIndicator, a: Decimal | int | float, b: Decimal | int | float, c: Decimal | int | float
) -> SubScore:
    """3.5/3.6 from the ratios A, B, C, each within 0–1."""
    ratios = []
    for name, value in (("A", a), ("B", b), ("C", c)):
        ratio = _fraction(value, f"{sub.key} {name}")
        if not 0 <= ratio <= 1:
            raise FormulaInputError(f"{sub.key} ratio {name} must be within 0–1, got {value}")
        ratios.append(ratio)
    return _payment(sub, *ratios)


def score_payment_counts(
    sub: SubIndicator,
    *,
    dossiers_paid_online: int,
    dossiers_with_fee: int,
    procedures_with_online_payment: int,
    procedures_fee_synced: int,
    procedures_with_fees: int,
) -> SubScore:
    """3.5/3.6 from counts; each ratio is 0 when its denominator is 0 (§4.3)."""

    def ratio(num: int, den: int, name: str) -> Fraction:
        n = _count(num, f"{sub.key} {name} numerator")
        d = _count(den, f"{sub.key} {name} denominator")
        if n > d:
            raise FormulaInputError(f"{sub.key} ratio {name}: {n} exceeds its denominator {d}")
        return Fraction(n, d) if d else Fraction(0)

    return _payment(
        sub,
        ratio(dossiers_paid_online, dossiers_with_fee, "A"),
        ratio(procedures_with_online_payment, procedures_with_fees, "B"),
        ratio(procedures_fee_synced, procedures_with_fees, "C"),
    )


def published_score(sub: SubIndicator, points: Decimal | int | float) -> SubScore:
    """A score as DVCQG publishes it (needed where the formula is [U]; allowed for any item)."""
    value = _fraction(points, f"{sub.key} points")
    if not 0 <= value <= Fraction(sub.max_points):
        raise FormulaInputError(
            f"{sub.key}: published score {points} is outside 0–{sub.max_points}"
        )
    return SubScore(
        key=sub.key,
        group=sub.group,
        ratio_pct=None,
        score=_round(value),
        max_points=sub.max_points,
        basis=ScoreBasis.PUBLISHED,
    )


def service_index(formula_set: FormulaSet, scores: Iterable[SubScore]) -> ServiceIndex:
    """Group scores (Σ items) and total (Σ groups) from one score per sub-indicator of the set."""
    if not formula_set.sub_indicators:
        raise FormulaInputError(
            f"formula set {formula_set.version} has no sub-indicator split "
            "(INDICATORS.md Open item 2); use service_index_from_groups"
        )
    expected = {s.key: s for s in formula_set.sub_indicators}
    given: dict[str, SubScore] = {}
    for score in scores:
        if score.key in given:
            raise FormulaInputError(f"sub-indicator {score.key} scored twice")
        sub = expected.get(score.key)
        if sub is None:
            raise FormulaInputError(
                f"sub-indicator {score.key} is not part of formula set {formula_set.version}"
            )
        if sub.max_points != score.max_points or sub.group is not score.group:
            raise FormulaInputError(
                f"sub-indicator {score.key} was scored with maximum {score.max_points}, "
                f"formula set {formula_set.version} says {sub.max_points}"
            )
        given[score.key] = score
    missing = [key for key in expected if key not in given]
    if missing:
        raise FormulaInputError(
            f"formula set {formula_set.version}: no score for {', '.join(missing)}"
        )
    groups = tuple(
        GroupScore(
            group=group,
            score=sum((s.score for s in given.values() if s.group is group), Decimal("0.00")),
            max_points=maximum,
            items=tuple(given[s.key] for s in formula_set.sub_indicators if s.group is group),
        )
        for group, maximum in formula_set.group_max
    )
    return _total(formula_set, groups)


def service_index_from_groups(
    formula_set: FormulaSet, group_scores: Mapping[Group, Decimal | int | float]
) -> ServiceIndex:
    """Total from group scores as published (e.g. DVCQG, or any set without a split)."""
    if sorted(group_scores) != list(Group):
        raise FormulaInputError(
            f"group scores must cover groups 1–5, got {sorted(int(g) for g in group_scores)}"
        )
    groups = []
    for group, maximum in formula_set.group_max:
        value = _fraction(group_scores[group], f"group {group.name} score")
        if not 0 <= value <= Fraction(maximum):
            raise FormulaInputError(
                f"group {group.name} score {group_scores[group]} is outside 0–{maximum}"
            )
        groups.append(GroupScore(group=group, score=_round(value), max_points=maximum, items=()))
    return _total(formula_set, tuple(groups))


def _total(formula_set: FormulaSet, groups: tuple[GroupScore, ...]) -> ServiceIndex:
    for group in groups:
        if group.score > group.max_points:
            raise FormulaInputError(
                f"group {group.group.name} scores {group.score}, above its maximum "
                f"{group.max_points}"
            )
    total = sum((g.score for g in groups), Decimal("0.00"))
    if total > formula_set.total_max:
        raise FormulaInputError(f"total {total} exceeds {formula_set.total_max}")
    return ServiceIndex(
        version=formula_set.version, groups=groups, total=total, max_points=formula_set.total_max
    )
