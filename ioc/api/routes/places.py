"""Places: the 34 provinces and 3,321 communes and wards, searchable without diacritics."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from ioc.api import schemas
from ioc.api.context import data, scope
from ioc.api.data import not_found
from ioc.api.routes import Blueprint
from ioc.api.routes.indicators import page
from ioc.places import Province, Ward, fold

blp = Blueprint(
    "places",
    __name__,
    url_prefix="/api/v1/places",
    description="Provinces and communes/wards after the July 2025 reform (official codes).",
)


def _province(p: Province) -> dict[str, Any]:
    return {
        "code": p.code,
        "codename": p.codename,
        "name": p.name,
        "division_type": str(p.division_type),
    }


def _ward(w: Ward) -> dict[str, Any]:
    return {
        "code": w.code,
        "codename": w.codename,
        "name": w.name,
        "division_type": str(w.division_type),
        "province_code": w.province_code,
    }


@blp.route("/provinces")
class Provinces(MethodView):
    @blp.response(200, schemas.ProvinceListSchema)
    def get(self) -> dict[str, Any]:
        """The provinces the caller's key may read (all 34 for an unscoped key)."""
        allowed = scope()
        provinces = data().places.provinces()
        return {"items": [_province(p) for p in provinces if allowed.allows(p.code)]}


@blp.route("/provinces/<string:code>")
class ProvinceResource(MethodView):
    @blp.response(200, schemas.ProvinceSchema)
    def get(self, code: str) -> dict[str, Any]:
        """One province."""
        return _province(data().province(code, scope()))


@blp.route("/provinces/<string:code>/wards")
class ProvinceWards(MethodView):
    @blp.arguments(schemas.WardsQuery, location="query")
    @blp.response(200, schemas.WardPageSchema)
    def get(self, args: dict[str, Any], code: str) -> dict[str, Any]:
        """The communes and wards of a province, by code; ``q`` filters by name."""
        reader = data()
        province = reader.province(code, scope())
        wards = reader.places.wards_of(province.code)
        if args.get("q"):
            wanted = fold(args["q"])
            wards = tuple(w for w in wards if f" {wanted}" in f" {fold(w.name)}")
        return page([_ward(w) for w in wards], args["page"], args["page_size"])


@blp.route("/wards/<string:code>")
class WardResource(MethodView):
    @blp.response(200, schemas.WardSchema)
    def get(self, code: str) -> dict[str, Any]:
        """One commune or ward."""
        reader = data()
        ref = reader.place(code, scope())
        if ref.level != "ward":
            raise not_found("ward", code)
        return _ward(reader.places.ward(code))


@blp.route("/search")
class Search(MethodView):
    @blp.arguments(schemas.SearchQuery, location="query")
    @blp.response(200, schemas.SearchResultSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Provinces and wards whose name matches ``q`` (case, diacritics and đ ignored)."""
        reader = data()
        allowed = scope()
        items = []
        for place in reader.places.search(args["q"], limit=10 * args["limit"]):
            if isinstance(place, Ward):
                ref = {
                    "code": place.code,
                    "level": "ward",
                    "name": place.name,
                    "province": place.province_code,
                }
            else:
                ref = {
                    "code": place.code,
                    "level": "province",
                    "name": place.name,
                    "province": place.code,
                }
            if allowed.allows(ref["province"]):
                items.append(ref)
            if len(items) == args["limit"]:
                break
        return {"items": items}
