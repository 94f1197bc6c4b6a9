"""Vietnam's administrative units after the 1 July 2025 reform: 34 provinces, 3,321 communes/wards.

The data comes from the ``vietnam-provinces`` package (2025.10.1, data retrieved 2025-10-18;
``Places.data_version`` gives the date of the installed copy), which transcribes the General
Statistics Office's list of units (https://danhmuchanhchinh.gso.gov.vn/). Official codes are
the identifiers: province codes are 2 digits and ward codes 5 digits, zero-padded as the GSO
writes them ("01", "00004"). Names are looked up here, never stored elsewhere.

Ward codenames are NOT unique, even inside one province (``xa_tan_thanh`` is both "Xã Tân
Thành" and "Xã Tân Thạnh" in Tây Ninh), so ``wards_by_codename`` returns a tuple; only codes
identify a ward.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from types import MappingProxyType

import vietnam_provinces as vnp

__all__ = [
    "DivisionType",
    "Place",
    "Places",
    "Province",
    "Ward",
    "fold",
    "get_places",
    "province_code_str",
    "ward_code_str",
]


class DivisionType(StrEnum):
    """Kind of administrative unit, valued with the Vietnamese term the package uses."""

    PROVINCE = "tỉnh"
    CENTRAL_CITY = "thành phố trung ương"
    COMMUNE = "xã"
    WARD = "phường"
    SPECIAL_ZONE = "đặc khu"


_PROVINCE_TYPES = frozenset({DivisionType.PROVINCE, DivisionType.CENTRAL_CITY})
_WARD_TYPES = frozenset({DivisionType.COMMUNE, DivisionType.WARD, DivisionType.SPECIAL_ZONE})

# Folded word(s) each kind of unit carries before its name ("Tỉnh" is never written).
_NAME_PREFIX: Mapping[DivisionType, str] = MappingProxyType(
    {
        DivisionType.PROVINCE: "",
        DivisionType.CENTRAL_CITY: "thanh pho ",
        DivisionType.COMMUNE: "xa ",
        DivisionType.WARD: "phuong ",
        DivisionType.SPECIAL_ZONE: "dac khu ",
    }
)


@dataclass(frozen=True, slots=True)
class Province:
    """A province-level unit (province or centrally-run city)."""

    code: str
    codename: str
    name: str
    division_type: DivisionType


@dataclass(frozen=True, slots=True)
class Ward:
    """A commune-level unit (commune, ward or special zone) and the code of its province."""

    code: str
    codename: str
    name: str
    division_type: DivisionType
    province_code: str


Place = Province | Ward

# đ/Đ have no decomposition; Ð/ð (Icelandic eth) look the same and turn up in typed text.
_D_LETTERS = str.maketrans({"đ": "d", "Đ": "D", "ð": "d", "Ð": "D"})
_APOSTROPHES = str.maketrans("", "", "'’‘ʼ`")
_SEPARATORS = re.compile(r"[\W_]+")


def fold(text: str) -> str:
    """Lower-case, diacritic-free, single-spaced form of ``text`` used for matching names."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_D_LETTERS))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = _SEPARATORS.sub(" ", bare.translate(_APOSTROPHES).casefold())
    return " ".join(words.split())


def province_code_str(code: int) -> str:
    """Official 2-digit form of a province code."""
    return f"{code:02d}"


def ward_code_str(code: int) -> str:
    """Official 5-digit form of a ward code."""
    return f"{code:05d}"


@dataclass(frozen=True, slots=True)
class _Entry:
    """A place with its folded full name and folded name without the type word."""

    place: Place
    full: str
    base: str


def _entry(place: Place) -> _Entry:
    """Search entry for one place."""
    full = fold(place.name)
    prefix = _NAME_PREFIX[place.division_type]
    base = full.removeprefix(prefix) if prefix else full
    return _Entry(place, full, base)


class Places:
    """Immutable, validated index of provinces and wards, keyed by official code."""

    __slots__ = (
        "_data_version",
        "_entries",
        "_province_by_codename",
        "_provinces",
        "_provinces_by_code",
        "_ward_by_code",
        "_wards",
        "_wards_by_codename",
        "_wards_by_province",
    )

    def __init__(
        self, provinces: Iterable[Province], wards: Iterable[Ward], *, data_version: str = ""
    ) -> None:
        """Index the units; raise ValueError on duplicate codes/codenames or orphan wards."""
        self._data_version = data_version
        province_list = sorted(provinces, key=lambda p: p.code)
        ward_list = sorted(wards, key=lambda w: w.code)
        self._provinces: tuple[Province, ...] = tuple(province_list)
        self._wards: tuple[Ward, ...] = tuple(ward_list)

        by_code: dict[str, Province] = {}
        by_codename: dict[str, Province] = {}
        for p in province_list:
            if p.division_type not in _PROVINCE_TYPES:
                raise ValueError(f"province {p.code} has ward division type {p.division_type!r}")
            if p.code in by_code:
                raise ValueError(f"duplicate province code {p.code!r}")
            if p.codename in by_codename:
                raise ValueError(f"duplicate province codename {p.codename!r}")
            by_code[p.code] = p
            by_codename[p.codename] = p

        ward_by_code: dict[str, Ward] = {}
        by_province: dict[str, list[Ward]] = {code: [] for code in by_code}
        ward_codenames: dict[str, list[Ward]] = {}
        for w in ward_list:
            if w.division_type not in _WARD_TYPES:
                raise ValueError(f"ward {w.code} has province division type {w.division_type!r}")
            if w.code in ward_by_code:
                raise ValueError(f"duplicate ward code {w.code!r}")
            if w.province_code not in by_province:
                raise ValueError(f"ward {w.code} names unknown province code {w.province_code!r}")
            ward_by_code[w.code] = w
            by_province[w.province_code].append(w)
            ward_codenames.setdefault(w.codename, []).append(w)

        self._provinces_by_code: Mapping[str, Province] = MappingProxyType(by_code)
        self._province_by_codename: Mapping[str, Province] = MappingProxyType(by_codename)
        self._ward_by_code: Mapping[str, Ward] = MappingProxyType(ward_by_code)
        self._wards_by_province: Mapping[str, tuple[Ward, ...]] = MappingProxyType(
            {code: tuple(ws) for code, ws in by_province.items()}
        )
        self._wards_by_codename: Mapping[str, tuple[Ward, ...]] = MappingProxyType(
            {name: tuple(ws) for name, ws in ward_codenames.items()}
        )
        places: list[Place] = [*province_list, *ward_list]
        self._entries: tuple[_Entry, ...] = tuple(_entry(place) for place in places)

    @classmethod
    def from_package(cls) -> Places:
        """Build the index from the installed ``vietnam-provinces`` package."""
        provinces = [
            Province(
                code=province_code_str(int(p.code)),
                codename=str(p.codename),
                name=str(p.name),
                division_type=DivisionType(p.division_type.value),
            )
            for p in vnp.Province.iter_all()
        ]
        wards = [
            Ward(
                code=ward_code_str(int(w.code)),
                codename=str(w.codename),
                name=str(w.name),
                division_type=DivisionType(w.division_type.value),
                province_code=province_code_str(int(w.province_code)),
            )
            for w in vnp.Ward.iter_all()
        ]
        return cls(provinces, wards, data_version=str(vnp.__data_version__))

    @property
    def data_version(self) -> str:
        """Date the package's data was retrieved (YYYY-MM-DD), or "" for a hand-built index."""
        return self._data_version

    @property
    def province_count(self) -> int:
        """Number of province-level units."""
        return len(self._provinces)

    @property
    def ward_count(self) -> int:
        """Number of commune-level units."""
        return len(self._wards)

    def count_by_type(self) -> dict[DivisionType, int]:
        """Number of units of each division type (both levels)."""
        counts = Counter(p.division_type for p in self._provinces)
        counts.update(w.division_type for w in self._wards)
        return dict(counts)

    def provinces(self) -> tuple[Province, ...]:
        """All provinces, ordered by code."""
        return self._provinces

    def wards(self) -> tuple[Ward, ...]:
        """All wards, ordered by code."""
        return self._wards

    def province(self, code: str) -> Province:
        """Province with this 2-digit official code; KeyError if there is none."""
        try:
            return self._provinces_by_code[code]
        except KeyError:
            raise KeyError(
                f"unknown province code {code!r} (expected 2 digits, e.g. '01')"
            ) from None

    def ward(self, code: str) -> Ward:
        """Ward with this 5-digit official code; KeyError if there is none."""
        try:
            return self._ward_by_code[code]
        except KeyError:
            raise KeyError(
                f"unknown ward code {code!r} (expected 5 digits, e.g. '00004')"
            ) from None

    def province_by_codename(self, codename: str) -> Province:
        """Province with this codename (e.g. 'ha_noi'); KeyError if there is none."""
        try:
            return self._province_by_codename[codename]
        except KeyError:
            raise KeyError(f"unknown province codename {codename!r}") from None

    def wards_by_codename(self, codename: str) -> tuple[Ward, ...]:
        """Wards with this codename, ordered by code (codenames are not unique); may be empty."""
        return self._wards_by_codename.get(codename, ())

    def province_of(self, ward_code: str) -> Province:
        """Province the ward with this code belongs to; KeyError for an unknown ward."""
        return self._provinces_by_code[self.ward(ward_code).province_code]

    def wards_of(self, province_code: str) -> tuple[Ward, ...]:
        """Wards of the province with this code, ordered by code; KeyError if unknown."""
        return self._wards_by_province[self.province(province_code).code]

    def search(self, text: str, limit: int = 20) -> tuple[Place, ...]:
        """Provinces and wards (a tuple of ``Place``) whose name matches ``text``, best first."""
        # Matching ignores case, diacritics, đ/d and punctuation; the folded query must start at
        # a word of the folded name. Order: name without its type word equals the query (or the
        # full name does), then that name starts with it, then any other word match; within a
        # rank provinces before wards, then by code. An empty query matches nothing.
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        query = fold(text)
        if not query or limit == 0:
            return ()
        ranked: list[tuple[int, int, str, Place]] = []
        for e in self._entries:
            if query in (e.base, e.full):
                rank = 0
            elif e.base.startswith(query):
                rank = 1
            elif f" {query}" in f" {e.full}":
                rank = 2
            else:
                continue
            level = 0 if isinstance(e.place, Province) else 1
            ranked.append((rank, level, e.place.code, e.place))
        ranked.sort(key=lambda r: r[:3])
        return tuple(r[3] for r in ranked[:limit])


@cache
def get_places() -> Places:
    """The shared index built from the package, built once on first use."""
    return Places.from_package()
