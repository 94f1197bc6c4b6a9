"""Places: the reform's totals, code/codename lookups, parent links, accent-free search, errors."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import vietnam_provinces

from ioc.places import (
    DivisionType,
    Places,
    Province,
    Ward,
    fold,
    get_places,
    province_code_str,
    ward_code_str,
)


@pytest.fixture(scope="module")
def places() -> Places:
    return get_places()


# Totals from NQ 202/2025/QH15 and the GSO list (docs: /work/shared/domain/INDICATORS.md 6.4).


def test_reform_totals_34_provinces_and_3321_communes(places: Places) -> None:
    assert places.province_count == 34
    assert places.ward_count == 3321
    assert len(places.provinces()) == 34
    assert len(places.wards()) == 3321


def test_counts_by_division_type_match_the_reform(places: Places) -> None:
    assert places.count_by_type() == {
        DivisionType.CENTRAL_CITY: 6,
        DivisionType.PROVINCE: 28,
        DivisionType.COMMUNE: 2621,
        DivisionType.WARD: 687,
        DivisionType.SPECIAL_ZONE: 13,
    }


def test_ho_chi_minh_city_has_most_units_and_lai_chau_fewest(places: Places) -> None:
    sizes = {p.code: len(places.wards_of(p.code)) for p in places.provinces()}
    assert places.province_by_codename("ho_chi_minh").code == "79"
    assert sizes["79"] == 168 == max(sizes.values())
    assert places.province("12").name == "Lai Châu"
    assert sizes["12"] == 38 == min(sizes.values())
    assert sum(sizes.values()) == 3321


def test_codes_are_unique_zero_padded_and_sorted(places: Places) -> None:
    pcodes = [p.code for p in places.provinces()]
    wcodes = [w.code for w in places.wards()]
    assert len(set(pcodes)) == len(pcodes)
    assert len(set(wcodes)) == len(wcodes)
    assert all(re.fullmatch(r"\d{2}", c) for c in pcodes)
    assert all(re.fullmatch(r"\d{5}", c) for c in wcodes)
    assert pcodes == sorted(pcodes)
    assert wcodes == sorted(wcodes)
    assert len({p.codename for p in places.provinces()}) == 34


def test_every_ward_belongs_to_an_existing_province(places: Places) -> None:
    known = {p.code for p in places.provinces()}
    assert all(w.province_code in known for w in places.wards())
    for p in places.provinces():
        wards = places.wards_of(p.code)
        assert wards, p.code
        assert all(w.province_code == p.code for w in wards)
        assert [w.code for w in wards] == sorted(w.code for w in wards)


def test_index_agrees_with_the_package_json_file(places: Places) -> None:
    # The JSON file is a separate rendering of the same GSO data inside the package.
    nested = json.loads(vietnam_provinces.NESTED_DIVISIONS_JSON_PATH.read_text(encoding="utf-8"))
    expected_provinces = {
        f"{p['code']:02d}": (p["name"], p["codename"], p["division_type"]) for p in nested
    }
    expected_wards = {
        f"{w['code']:05d}": (w["name"], w["codename"], w["division_type"], f"{p['code']:02d}")
        for p in nested
        for w in p["wards"]
    }
    assert {
        p.code: (p.name, p.codename, p.division_type.value) for p in places.provinces()
    } == expected_provinces
    assert {
        w.code: (w.name, w.codename, w.division_type.value, w.province_code) for w in places.wards()
    } == expected_wards


@pytest.mark.parametrize(
    ("code", "codename", "name", "division_type"),
    [
        ("01", "ha_noi", "Thành phố Hà Nội", DivisionType.CENTRAL_CITY),
        ("40", "nghe_an", "Nghệ An", DivisionType.PROVINCE),
        ("46", "hue", "Thành phố Huế", DivisionType.CENTRAL_CITY),
        ("48", "da_nang", "Thành phố Đà Nẵng", DivisionType.CENTRAL_CITY),
        ("96", "ca_mau", "Cà Mau", DivisionType.PROVINCE),
    ],
)
def test_province_lookup_by_code_and_codename(
    places: Places, code: str, codename: str, name: str, division_type: DivisionType
) -> None:
    expected = Province(code=code, codename=codename, name=name, division_type=division_type)
    assert places.province(code) == expected
    assert places.province_by_codename(codename) == expected


def test_ward_lookup_and_parent(places: Places) -> None:
    ba_dinh = places.ward("00004")
    assert ba_dinh == Ward(
        code="00004",
        codename="phuong_ba_dinh",
        name="Phường Ba Đình",
        division_type=DivisionType.WARD,
        province_code="01",
    )
    assert places.province_of("00004").codename == "ha_noi"
    assert ba_dinh in places.wards_of("01")


def test_special_zone_belongs_to_its_city(places: Places) -> None:
    [con_dao] = [w for w in places.wards() if w.name == "Đặc khu Côn Đảo"]
    assert con_dao.division_type is DivisionType.SPECIAL_ZONE
    assert places.province_of(con_dao.code).code == "79"


def test_ward_codenames_are_not_unique_so_lookup_returns_all(places: Places) -> None:
    same = places.wards_by_codename("xa_tan_thanh")
    assert len(same) == 13
    assert {w.name for w in same} == {"Xã Tân Thanh", "Xã Tân Thành", "Xã Tân Thạnh"}
    assert [w.code for w in same] == sorted(w.code for w in same)
    # Two distinct communes of Tây Ninh share it: only the code tells them apart.
    assert {w.name for w in same if w.province_code == "80"} == {"Xã Tân Thành", "Xã Tân Thạnh"}
    assert places.wards_by_codename("phuong_ba_dinh") == (places.ward("00004"),)
    assert places.wards_by_codename("no_such_place") == ()


@pytest.mark.parametrize(
    ("call", "arg", "fragment"),
    [
        ("province", "99", "unknown province code '99'"),
        ("province", "1", "unknown province code '1'"),  # codes are zero-padded, never bare ints
        ("ward", "4", "unknown ward code '4'"),
        ("ward", "99999", "unknown ward code '99999'"),
        ("province_of", "99999", "unknown ward code '99999'"),
        ("wards_of", "02", "unknown province code '02'"),  # 02 (Hà Giang) merged away in 2025
        ("province_by_codename", "ha_giang", "unknown province codename 'ha_giang'"),
    ],
)
def test_unknown_codes_raise_key_error_naming_the_code(
    places: Places, call: str, arg: str, fragment: str
) -> None:
    with pytest.raises(KeyError, match=re.escape(fragment)):
        getattr(places, call)(arg)


def test_a_ward_code_is_not_a_province_code(places: Places) -> None:
    with pytest.raises(KeyError):
        places.province("00004")
    with pytest.raises(KeyError):
        places.ward("01")


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Hà Nội", "ha noi"),
        ("HA NOI", "ha noi"),
        ("Thành phố Đà Nẵng", "thanh pho da nang"),
        ("đà nẵng", "da nang"),
        ("ĐẮK LẮK", "dak lak"),
        ("Ðà Nẵng", "da nang"),  # U+00D0 eth, a common look-alike typed for Đ
        ("Xã Ea H’leo", "xa ea hleo"),
        ("Xã Chân Mây – Lăng Cô", "xa chan may lang co"),
        ("  ha_noi ", "ha noi"),
        ("Ha\u0300 No\u0323\u0302i", "ha noi"),  # decomposed input
    ],
)
def test_fold_removes_case_diacritics_and_punctuation(text: str, folded: str) -> None:
    assert fold(text) == folded


@pytest.mark.parametrize("text", ["ha noi", "Hà Nội", "HA NOI", "hà nội", "Thành phố Hà Nội"])
def test_search_finds_ha_noi_with_or_without_diacritics(places: Places, text: str) -> None:
    results = places.search(text)
    assert results[0] == places.province("01")


@pytest.mark.parametrize(
    ("text", "code"),
    [("da nang", "48"), ("đà nẵng", "48"), ("ĐÀ NẴNG", "48"), ("hue", "46"), ("ca mau", "96")],
)
def test_search_ranks_the_exact_province_first(places: Places, text: str, code: str) -> None:
    assert places.search(text)[0].code == code


def test_search_returns_wards_too_and_exact_names_first(places: Places) -> None:
    results = places.search("ba dinh")
    assert results[0] == places.ward("00004")  # "Phường Ba Đình", exact, lowest code
    assert all(isinstance(r, Ward) for r in results)
    assert {fold(r.name).removeprefix("phuong ").removeprefix("xa ") for r in results} == {
        "ba dinh"
    }
    # A query without the đ still finds the đ name, and vice versa.
    assert places.ward("00004") in places.search("BA DINH")


def test_search_matches_from_the_start_of_a_word_only(places: Places) -> None:
    assert places.search("oi") == ()  # inside "Nội" but no word starts with it
    assert places.province("01") in places.search("noi")
    assert places.province("01") in places.search("thanh pho ha")


def test_search_handles_apostrophes_and_dashes(places: Places) -> None:
    [ea_hleo] = places.search("ea hleo")
    assert ea_hleo.name == "Xã Ea H’leo"
    assert places.search("Chân Mây - Lăng Cô")[0].name == "Xã Chân Mây – Lăng Cô"


def test_search_limit_and_empty_query(places: Places) -> None:
    many = places.search("tan", limit=1000)
    assert len(many) > 20
    assert places.search("tan") == many[:20]
    assert places.search("tan", limit=3) == many[:3]
    assert places.search("tan", limit=0) == ()
    assert places.search("") == ()
    assert places.search("  – ") == ()
    with pytest.raises(ValueError, match="limit"):
        places.search("tan", limit=-1)


def test_search_orders_provinces_before_wards_within_a_rank(places: Places) -> None:
    # "Phường Lào Cai" (02647) sorts before "15" as text: the province must still come first.
    assert [r.code for r in places.search("lao cai")] == ["15", "02647"]
    assert places.search("an giang")[0] == places.province("91")


def test_search_ranks_exact_names_before_longer_names(places: Places) -> None:
    # "Xã Phủ Thông" (01969) starts with "phu tho" and has a lower code than the exact wards.
    results = places.search("phu tho")
    assert [r.code for r in results[:4]] == ["25", "07942", "27226", "30034"]
    assert {r.name for r in results[1:4]} == {"Phường Phú Thọ", "Xã Phú Thọ"}
    assert places.ward("01969") in results[4:]


def test_search_ranks_names_starting_with_the_query_before_later_words(places: Places) -> None:
    # "Xã Sóc Sơn" (00376) has "son" as its second word; "Xã Sơn ..." names come first.
    results = places.search("son", limit=300)
    assert len(results) < 300
    one_word_type = (DivisionType.COMMUNE, DivisionType.WARD)
    results = tuple(r for r in results if r.division_type in one_word_type)
    starts = [fold(r.name).split(" ", 1)[1].startswith("son") for r in results]
    assert starts == sorted(starts, reverse=True)
    assert starts.count(True) > 0
    assert places.ward("00376") in results[starts.count(True) :]


def test_values_are_immutable_and_index_is_built_once(places: Places) -> None:
    hanoi = places.province("01")
    with pytest.raises(dataclasses.FrozenInstanceError):
        hanoi.name = "x"  # type: ignore[misc]
    assert not hasattr(hanoi, "__dict__")  # slots
    assert get_places() is places
    assert isinstance(places.provinces(), tuple)
    assert isinstance(places.wards_of("01"), tuple)


def test_data_version_comes_from_the_package(places: Places) -> None:
    assert places.data_version == vietnam_provinces.__data_version__
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", places.data_version)


def test_code_formatting_pads_to_official_width() -> None:
    assert province_code_str(1) == "01"
    assert province_code_str(96) == "96"
    assert ward_code_str(4) == "00004"
    assert ward_code_str(32248) == "32248"


def _hanoi(code: str = "01", codename: str = "ha_noi") -> Province:
    return Province(code, codename, "Thành phố Hà Nội", DivisionType.CENTRAL_CITY)


def _ward(code: str, province_code: str = "01") -> Ward:
    return Ward(code, "phuong_x", "Phường X", DivisionType.WARD, province_code)


@pytest.mark.parametrize(
    ("provinces", "wards", "fragment"),
    [
        ([_hanoi(), _hanoi()], [], "duplicate province code '01'"),
        ([_hanoi(), _hanoi("02")], [], "duplicate province codename 'ha_noi'"),
        ([_hanoi()], [_ward("00004"), _ward("00004")], "duplicate ward code '00004'"),
        ([_hanoi()], [_ward("00004", "02")], "unknown province code '02'"),
        (
            [Province("01", "x", "X", DivisionType.COMMUNE)],
            [],
            "province 01 has ward division type",
        ),
        ([_hanoi()], [Ward("00004", "x", "X", DivisionType.PROVINCE, "01")], "province division"),
    ],
)
def test_index_rejects_inconsistent_data(
    provinces: list[Province], wards: list[Ward], fragment: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        Places(provinces, wards)


def test_small_index_works_without_the_package() -> None:
    small = Places([_hanoi()], [_ward("00008"), _ward("00004")])
    assert small.province_count == 1
    assert small.ward_count == 2
    assert [w.code for w in small.wards_of("01")] == ["00004", "00008"]
    assert small.search("x") == (small.ward("00004"), small.ward("00008"))
    assert small.data_version == ""
