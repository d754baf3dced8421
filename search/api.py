"""The search REST API, under /api/v1/: one view per operation; logic lives in search/selectors.py.

Read-only and anonymous by default (no session or CSRF), throttled, with optional API keys
(search/access.py). Every view rejects parameters it does not know, so a typo (`colr=Navy`) is a 400
that lists the allowed ones instead of a silently unfiltered result, and a one-value parameter given
twice (`limit=1&limit=2`), which would otherwise silently keep its last value; filters may repeat.
The reads (searches, product details, suggestions) run through search_read: on the read replica
when one is configured and close enough behind, else on the primary (search/read_replica.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.core.files.storage import default_storage
from django.core.validators import RegexValidator
from django.http import QueryDict
from django.utils.http import urlencode
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.conf import catalog_settings
from catalog.photos import PhotoRejected, photo_decode_upload
from search.access import AnonymousSearchThrottle, ApiKeySearchThrottle, HasApiKeyWhenConfigured
from search.analytics import EventRejected, search_event_record
from search.analytics_recording import search_record
from search.conf import search_settings
from search.exceptions import (
    PhotoTooLarge,
    SearchUnavailable,
    UnsupportedPhoto,
    search_unavailable_as_api_error,
)
from search.facets import BASIS_KINDS, CANDIDATE_REASONS
from search.filters import FACETS, FILTER_COLUMNS
from search.models import SearchEvent, SearchLog
from search.ranking import SearchFilters
from search.read_replica import search_read
from search.selectors import (
    MODES,
    SearchPage,
    product_get_by_sku,
    search_by_photo,
    search_by_text,
    search_similar,
)
from search.suggestions import KINDS as SUGGESTION_KINDS
from search.suggestions import suggestions_for_prefix

# Parameters DRF itself reads (renderer choice); always allowed.
FRAMEWORK_PARAMETERS = {"format"}
# Room for the multipart envelope around a photo of the largest allowed size.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


CENTS = Decimal("0.01")
# Written into the schema as patterns, so that clients (and schemathesis) know that text fields take
# no NUL character and that a query needs something besides spaces.
NO_NULL_CHARACTERS = RegexValidator(r"^[^\x00]*$", message="Null characters are not allowed.")
QUERY_TEXT = RegexValidator(
    r"^[^\x00]*[^\s\x00][^\x00]*$", message="The search query is empty or holds a null character."
)
# Product.price is numeric(12, 2).
MAX_PRICE = Decimal("9999999999.99")


def photo_url(request: Request, name: str | None) -> str | None:
    return request.build_absolute_uri(default_storage.url(name)) if name else None


def reject_unknown_parameters(names: Iterable[str], allowed: Iterable[str]) -> None:
    allowed_set = set(allowed) | FRAMEWORK_PARAMETERS
    unknown = sorted(set(names) - allowed_set)
    if unknown:
        listed = ", ".join(sorted(allowed_set - FRAMEWORK_PARAMETERS))
        raise ValidationError(
            {name: [f"Unknown parameter. Allowed parameters: {listed}."] for name in unknown}
        )


def reject_repeated_parameters(query: QueryDict, fields: Mapping[str, serializers.Field]) -> None:
    """A parameter that takes one value (`q`, `limit`, `mode`, a price...) given more than once is a
    400 that names it: reading a QueryDict keeps its last value, so `q=shirt&q=jeans` would search
    for jeans without a word. List fields (the filters, where repeating means OR) may repeat."""
    errors = {
        name: [
            f"`{name}` was given {len(query.getlist(name))} times; give it once. Only the filters "
            f"({', '.join(FILTER_COLUMNS)}) may repeat, to match any of their values."
        ]
        for name, field in fields.items()
        if len(query.getlist(name)) > 1 and not isinstance(field, serializers.ListField)
    }
    if errors:
        raise ValidationError(errors)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong and what to do.")
    code = serializers.CharField(required=False)

    class Meta:
        ref_name = "Error"


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


# Every answer but 200 that an operation can give, documented once (the schema must list them all:
# the schemathesis run in tests/search/test_api_fuzz.py fails on any undocumented status).
COMMON_ERRORS = {
    400: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description="Invalid parameters: each rejected parameter with its messages, e.g. "
        '`{"limit": ["Ensure this value is less than or equal to 100."]}`.',
    ),
    401: _error("An API key is configured and the request has none, or a wrong one (X-Api-Key)."),
    429: _error("Too many requests from this client: wait the number of seconds in Retry-After."),
    503: _error(
        "Search cannot answer now: no active model, its files are missing, or the database is "
        "unavailable (then with Retry-After)."
    ),
}
PRODUCT_ERRORS = {**COMMON_ERRORS, 404: _error("No active product with this sku.")}
PHOTO_ERRORS = {
    **COMMON_ERRORS,
    413: _error("The photo is larger than the size limit."),
    415: _error("The file is not a JPEG, PNG or WebP photo that can be decoded."),
}


class SearchApiView(APIView):
    authentication_classes: list = []
    permission_classes = [HasApiKeyWhenConfigured]
    throttle_classes = [AnonymousSearchThrottle, ApiKeySearchThrottle]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, SearchUnavailable):
            exc = search_unavailable_as_api_error(exc)
        return super().handle_exception(exc)


def _filter_field() -> serializers.ListField:
    return serializers.ListField(
        # A blank value (`?brand=`, as an empty form field sends it) is no filter, not an error.
        child=serializers.CharField(max_length=100, allow_blank=True, validators=[NO_NULL_CHARACTERS]),
        required=False,
        help_text="Repeat to match any of several values; an empty value is ignored.",
    )


def _price_bound_field() -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=None,
        decimal_places=None,
        min_value=Decimal(0),
        max_value=MAX_PRICE,
        required=False,
        coerce_to_string=False,
    )


class SearchFilterSerializer(serializers.Serializer):
    """Filters, limit and offset shared by every ranking endpoint."""

    def get_fields(self) -> dict[str, serializers.Field]:
        # One list field per filter column (search/filters.py), first, as the schema lists them;
        # `limit` built here too, so that its maximum is the setting's value when the request (or
        # the OpenAPI schema) is made, not when this module was imported.
        maximum, default = int(search_settings.MAX_LIMIT), int(search_settings.DEFAULT_LIMIT)
        limit = serializers.IntegerField(
            min_value=1,
            max_value=maximum,
            required=False,
            help_text=f"Results per page: 1 to {maximum} (default {default}).",
        )
        window = int(search_settings.MAX_WINDOW)
        offset = serializers.IntegerField(
            min_value=0,
            max_value=window - 1,
            required=False,
            default=0,
            help_text=f"Results to skip. Results are served down to rank {window}: a page that would "
            "reach past it is cut there, and has no next page.",
        )
        fields = {**{name: _filter_field() for name in FILTER_COLUMNS}, **super().get_fields()}
        return {**fields, "limit": limit, "offset": offset}

    # Input only: coerce_to_string=False documents them as numbers with their minimum (0) in the
    # OpenAPI schema instead of as strings with a pattern that allows a minus sign.
    # Any precision: a price bound of 19.999 is a valid bound, not an error; the maximum is the
    # largest price the database column holds. max_price below min_price matches nothing.
    min_price = _price_bound_field()
    max_price = _price_bound_field()

    class Meta:
        ref_name = "SearchFilters"

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.setdefault("limit", int(search_settings.DEFAULT_LIMIT))
        # A price range with max_price below min_price is valid and empty: it matches no product.
        window = int(search_settings.MAX_WINDOW)
        attrs["limit"] = min(attrs["limit"], window - attrs["offset"])
        return attrs

    @staticmethod
    def to_filters(data: dict[str, Any]) -> SearchFilters:
        return SearchFilters(
            values={
                name: tuple(value for value in data[name] if value)
                for name in FILTER_COLUMNS
                if any(data.get(name) or ())
            },
            min_price=data.get("min_price"),
            max_price=data.get("max_price"),
        )


class SearchResultSerializer(serializers.Serializer):
    sku = serializers.CharField()
    title = serializers.CharField()
    brand = serializers.CharField()
    colour = serializers.CharField()
    gender = serializers.CharField()
    category = serializers.CharField(source="article_type", help_text="The article type, e.g. Shirts.")
    price = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=False, allow_null=True)
    currency = serializers.CharField()
    photo_url = serializers.SerializerMethodField()
    score = serializers.FloatField()

    class Meta:
        ref_name = "SearchResult"

    def get_photo_url(self, product: dict[str, Any]) -> str | None:
        return photo_url(self.context["request"], product.get("primary_photo"))


class FacetValueSerializer(serializers.Serializer):
    value = serializers.CharField()
    count = serializers.IntegerField()
    param = serializers.CharField(help_text="The filter parameter that selects this value.")

    class Meta:
        ref_name = "FacetValue"


class FacetsSerializer(serializers.Serializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {name: FacetValueSerializer(many=True) for name in FACETS}

    class Meta:
        ref_name = "Facets"


class FacetsBasisSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=BASIS_KINDS,
        help_text="`all_matches`: every product the query matches under the filters (hybrid full text); "
        "`candidates`: the query's nearest products under the filters, as many as "
        "PRODUCT_SEARCH_FACET_CANDIDATES (a similarity ranking has no matching set).",
    )
    size = serializers.IntegerField(
        help_text="Products counted over with every filter applied. A facet whose own filter is set counts "
        "under the other filters only, so that the other values of a chosen facet keep their counts."
    )
    reason = serializers.ChoiceField(
        choices=CANDIDATE_REASONS,
        allow_null=True,
        help_text="Why `candidates`: `vector_query` (vector mode, photo, similar products), "
        "`no_word_matches` (no product has the query's words; results by meaning alone), "
        "`too_many_matches` (more products match than are counted). Null for `all_matches`.",
    )
    matches_more_than = serializers.IntegerField(
        allow_null=True,
        help_text="With `too_many_matches`: the limit the matching products went over "
        "(PRODUCT_SEARCH_FACET_MAX_MATCHES), else null.",
    )

    class Meta:
        ref_name = "FacetsBasis"


class ModelVersionSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()

    class Meta:
        ref_name = "ModelVersionSummary"


class RelaxationSerializer(serializers.Serializer):
    step = serializers.ChoiceField(choices=["words", "filter"])
    param = serializers.CharField(allow_null=True, help_text="The filter given up (`filter` steps).")
    value = serializers.JSONField(allow_null=True, help_text="Its value(s), as the request gave them.")

    class Meta:
        ref_name = "Relaxation"


class SearchPageSerializer(serializers.Serializer):
    """The response of every ranking endpoint."""

    search_id = serializers.UUIDField(
        allow_null=True,
        help_text="This search's id: send it with click and add-to-cart events (POST events/). Null when "
        "analytics are off.",
    )
    mode = serializers.CharField()
    model_version = ModelVersionSummarySerializer()
    took_ms = serializers.FloatField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    next = serializers.CharField(allow_null=True, help_text="URL of the next page, or null.")
    results = SearchResultSerializer(many=True)
    facets = FacetsSerializer(
        help_text="Counts per facet value over the products `facets_basis` names; each facet counts under "
        "every filter but its own."
    )
    facets_basis = FacetsBasisSerializer(help_text="Which products the facets count over.")
    corrected_query = serializers.CharField(
        allow_null=True,
        help_text="Text search: the query as searched when spelling correction changed it "
        '("Showing results for ..."; `correct_spelling=false` searches the words as typed), else null.',
    )
    relaxed = RelaxationSerializer(
        many=True,
        help_text="Text search: what was given up because the query and filters left too few products, "
        "in order. `words`: no product has the query's words, the results are by meaning alone; "
        "`filter`: the filter `param` (`price` for the price range) was dropped, after the products that "
        "matched it.",
    )

    class Meta:
        ref_name = "SearchPage"


def _result_json(request: Request, product: dict[str, Any], score: float) -> dict[str, Any]:
    """One SearchResultSerializer object, built directly: DRF's field machinery costs ~4 ms per
    24-result page on the search hot path. tests/search/test_api_search.py checks the two agree."""
    # The text columns come from PostgreSQL as str (or None), as the serializer's CharFields give them.
    price = product["price"]
    return {
        "sku": product["sku"],
        "title": product["title"],
        "brand": product["brand"],
        "colour": product["colour"],
        "gender": product["gender"],
        "category": product["article_type"],
        "price": None if price is None else float(Decimal(price).quantize(CENTS)),
        "currency": product["currency"],
        "photo_url": photo_url(request, product.get("primary_photo")),
        "score": round(score, 6),
    }


def page_payload(*, request: Request, page: SearchPage) -> dict[str, Any]:
    """The SearchPageSerializer object of a page (documented by the serializer, built directly)."""
    next_url = None
    if page.has_more and request.method == "GET":
        query = request.query_params.copy()
        query["offset"] = str(page.offset + page.limit)
        next_url = request.build_absolute_uri(request.path + "?" + urlencode(query.lists(), doseq=True))
    return {
        "search_id": None,
        "mode": page.mode,
        "model_version": {"id": page.model_version.pk, "name": page.model_version.name},
        "took_ms": 0.0,
        "limit": page.limit,
        "offset": page.offset,
        "next": next_url,
        "results": [_result_json(request, hit.product, hit.score) for hit in page.hits],
        "facets": page.facets,  # already FacetsSerializer's shape (search.facets)
        "facets_basis": None if page.facets_basis is None else dataclasses.asdict(page.facets_basis),
        "corrected_query": page.corrected_query,
        "relaxed": [_relaxation_json(step) for step in page.relaxed],
    }


def _relaxation_json(step: dict[str, Any]) -> dict[str, Any]:
    value = step["value"]
    if isinstance(value, dict):  # the price range
        value = {key: None if bound is None else str(bound) for key, bound in value.items()}
    return {"step": step["step"], "param": step["param"], "value": value}


class SearchPageResponse(Response):
    """A ranking response that records its search after it is sent: the WSGI server calls close()
    once the body is out, so the shopper never waits for the analytics buffer's round trip."""

    def __init__(self, data: dict[str, Any], *, after_close: Callable[[], None] | None = None) -> None:
        super().__init__(data)
        self._after_close = after_close

    def close(self) -> None:
        super().close()
        if self._after_close is not None:
            after_close, self._after_close = self._after_close, None
            after_close()


def page_response(
    *, request: Request, page: SearchPage, started: float, kind: str, query: str, filters: SearchFilters
) -> Response:
    payload = page_payload(request=request, page=page)
    payload["took_ms"] = round((time.perf_counter() - started) * 1000, 2)
    record = search_record(kind=kind, query=query, filters=filters, page=page, latency_ms=payload["took_ms"])
    payload["search_id"] = record.search_id if record else None
    response = SearchPageResponse(payload, after_close=record.send if record else None)
    # Where the time went (encode, fulltext, rank, total), shown by browsers' developer tools.
    stages = {name.removesuffix("_ms"): value for name, value in page.timings_ms.items()}
    stages["total"] = payload["took_ms"]
    response["Server-Timing"] = ", ".join(f"{name};dur={value:.2f}" for name, value in stages.items())
    return response


class SearchApi(SearchApiView):
    class FilterSerializer(SearchFilterSerializer):
        q = serializers.CharField(
            max_length=search_settings.MAX_QUERY_LENGTH,
            validators=[QUERY_TEXT],
            help_text="What to look for, e.g. `navy check shirt` (at most 512 characters).",
            error_messages={
                "required": "Give a search query in `q`, e.g. ?q=navy check shirt.",
                "blank": "The search query is empty; type what you are looking for.",
            },
        )
        mode = serializers.ChoiceField(choices=MODES, required=False, help_text="`vector` or `hybrid`.")
        correct_spelling = serializers.BooleanField(
            required=False,
            default=True,
            help_text="Correct words the catalogue does not use to its nearest words (default true).",
        )

        class Meta:
            ref_name = "TextSearchParameters"

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: SearchPageSerializer, **COMMON_ERRORS},
        operation_id="search_text",
    )
    def get(self, request: Request) -> Response:
        started = time.perf_counter()
        serializer = self.FilterSerializer(data=request.query_params)
        reject_unknown_parameters(request.query_params.keys(), serializer.fields.keys())
        reject_repeated_parameters(request.query_params, serializer.fields)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        filters = SearchFilterSerializer.to_filters(data)
        page = search_read(
            search_by_text,
            query=data["q"],
            filters=filters,
            limit=data["limit"],
            offset=data["offset"],
            mode=data.get("mode"),
            correct_spelling=data["correct_spelling"],
        )
        return page_response(
            request=request,
            page=page,
            started=started,
            kind=SearchLog.Kind.TEXT,
            query=data["q"],
            filters=filters,
        )


class PhotoSearchApi(SearchApiView):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        photo = serializers.FileField(help_text="A JPEG, PNG or WebP photo, at most 10 MB.")

        class Meta:
            ref_name = "PhotoSearchInput"

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        parameters=[SearchFilterSerializer],
        responses={200: SearchPageSerializer, **PHOTO_ERRORS},
        operation_id="search_photo",
    )
    def post(self, request: Request) -> Response:
        started = time.perf_counter()
        max_bytes = int(catalog_settings.MAX_IMAGE_BYTES)
        # Refuse an oversized upload from its declared length, before reading the body.
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > max_bytes + MULTIPART_OVERHEAD_BYTES:
            raise PhotoTooLarge(f"The photo is larger than the limit of {max_bytes / (1024 * 1024):.0f} MB.")
        fields = self.InputSerializer().fields.keys()
        filter_fields = SearchFilterSerializer().fields
        reject_unknown_parameters(request.query_params.keys(), filter_fields.keys())
        reject_unknown_parameters(request.data.keys(), [*fields, *filter_fields.keys()])
        photos = request.FILES.getlist("photo")
        if not photos:
            raise ValidationError({"photo": ["Attach a photo as the multipart field `photo`."]})
        if len(photos) > 1:
            raise ValidationError({"photo": [f"Attach one photo; {len(photos)} were sent."]})
        # Filters may come in the query string, the form, or both: their values add up, and then a
        # one-value parameter given in both places counts as repeated.
        query = request.query_params.copy()
        for name, values in request.data.lists():  # type: ignore[attr-defined]  # a QueryDict
            if name != "photo":
                query.setlist(name, query.getlist(name) + values)
        reject_repeated_parameters(query, filter_fields)
        serializer = SearchFilterSerializer(data=query)
        serializer.is_valid(raise_exception=True)
        try:
            image = photo_decode_upload(photos[0])
        except PhotoRejected as error:
            message = " ".join(error.messages)
            if error.code == "too_large":
                raise PhotoTooLarge(message) from error
            if error.code in ("not_an_image", "unsupported_format"):
                raise UnsupportedPhoto(message) from error
            raise ValidationError({"photo": [message]}) from error
        data = serializer.validated_data
        filters = SearchFilterSerializer.to_filters(data)
        page = search_read(
            search_by_photo, photo=image, filters=filters, limit=data["limit"], offset=data["offset"]
        )
        return page_response(
            request=request, page=page, started=started, kind=SearchLog.Kind.PHOTO, query="", filters=filters
        )


def _product_or_404(sku: str):
    product = search_read(product_get_by_sku, sku=sku)
    if product is None:
        raise NotFound(f"No product with sku {sku!r}.")
    return product


SKU_PARAMETER = OpenApiParameter("sku", str, OpenApiParameter.PATH, description="The product's SKU.")


class ProductDetailApi(SearchApiView):
    class OutputSerializer(serializers.Serializer):
        sku = serializers.CharField()
        title = serializers.CharField()
        description = serializers.CharField()
        brand = serializers.CharField()
        gender = serializers.CharField()
        colour = serializers.CharField()
        master_category = serializers.CharField()
        sub_category = serializers.CharField()
        article_type = serializers.CharField()
        season = serializers.CharField()
        usage = serializers.CharField()
        price = serializers.DecimalField(
            max_digits=12, decimal_places=2, coerce_to_string=False, allow_null=True
        )
        currency = serializers.CharField()
        attributes = serializers.DictField()
        photo_urls = serializers.SerializerMethodField()

        class Meta:
            ref_name = "ProductDetail"

        def get_photo_urls(self, product: Any) -> list[str]:
            request = self.context["request"]
            return [photo_url(request, image.image.name) or "" for image in product.images.all()]

    @extend_schema(
        parameters=[SKU_PARAMETER],
        responses={200: OutputSerializer, **PRODUCT_ERRORS},
        operation_id="product_detail",
    )
    def get(self, request: Request, sku: str) -> Response:
        reject_unknown_parameters(request.query_params.keys(), [])
        product = _product_or_404(sku)
        return Response(self.OutputSerializer(product, context={"request": request}).data)


class SimilarProductsApi(SearchApiView):
    class FilterSerializer(SearchFilterSerializer):
        class Meta:
            ref_name = "SimilarProductsParameters"

    @extend_schema(
        parameters=[SKU_PARAMETER, FilterSerializer],
        responses={200: SearchPageSerializer, **PRODUCT_ERRORS},
        operation_id="product_similar",
    )
    def get(self, request: Request, sku: str) -> Response:
        started = time.perf_counter()
        serializer = self.FilterSerializer(data=request.query_params)
        reject_unknown_parameters(request.query_params.keys(), serializer.fields.keys())
        reject_repeated_parameters(request.query_params, serializer.fields)
        serializer.is_valid(raise_exception=True)
        product = _product_or_404(sku)
        data = serializer.validated_data
        filters = SearchFilterSerializer.to_filters(data)
        page = search_read(
            search_similar, product=product, filters=filters, limit=data["limit"], offset=data["offset"]
        )
        return page_response(
            request=request,
            page=page,
            started=started,
            kind=SearchLog.Kind.SIMILAR,
            query=sku,
            filters=filters,
        )


class SuggestionSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="What to show, and to search for when chosen.")
    kind = serializers.ChoiceField(
        choices=SUGGESTION_KINDS,
        help_text="`query` (searched often, with results), `category`, `brand`, `colour` or `product`.",
    )
    param = serializers.CharField(
        allow_null=True, help_text="The filter that selects a category, brand or colour (its value: `text`)."
    )
    sku = serializers.CharField(allow_null=True, help_text="The product of a `product` suggestion.")

    class Meta:
        ref_name = "Suggestion"


class SuggestionsSerializer(serializers.Serializer):
    q = serializers.CharField(help_text="What was typed, as given.")
    suggestions = SuggestionSerializer(many=True)

    class Meta:
        ref_name = "Suggestions"


class SuggestApi(SearchApiView):
    """Completions for what a shopper has typed so far (search/suggestions.py)."""

    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(
            max_length=100,
            trim_whitespace=False,
            validators=[QUERY_TEXT],
            help_text="What the shopper has typed so far, e.g. `nav` or `navy sh`: each word is matched as "
            "the start of a word, without case. At most 100 characters.",
            error_messages={
                "required": "Give what was typed so far in `q`, e.g. ?q=nav.",
                "blank": "Nothing typed yet: give at least one character in `q`.",
            },
        )

        def get_fields(self) -> dict[str, serializers.Field]:
            maximum, default = (
                int(search_settings.SUGGEST_MAX_LIMIT),
                int(search_settings.SUGGEST_DEFAULT_LIMIT),
            )
            limit = serializers.IntegerField(
                min_value=1,
                max_value=maximum,
                required=False,
                default=default,
                help_text=f"Suggestions at most: 1 to {maximum} (default {default}).",
            )
            return {**super().get_fields(), "limit": limit}

        class Meta:
            ref_name = "SuggestParameters"

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: SuggestionsSerializer, **COMMON_ERRORS},
        operation_id="suggest",
        description="Completions as the shopper types: popular queries that had results, categories, "
        "brands, colours, then product titles. Each word typed matches the start of a word, any case.",
    )
    def get(self, request: Request) -> Response:
        serializer = self.FilterSerializer(data=request.query_params)
        reject_unknown_parameters(request.query_params.keys(), serializer.fields.keys())
        reject_repeated_parameters(request.query_params, serializer.fields)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        suggestions = search_read(suggestions_for_prefix, text=data["q"], limit=data["limit"])
        return Response(
            {
                "q": data["q"],
                "suggestions": [
                    {"text": item.text, "kind": item.kind, "param": item.param, "sku": item.sku}
                    for item in suggestions
                ],
            }
        )


class SearchEventApi(SearchApiView):
    """A shopper's click or add-to-cart on a search result, for analytics."""

    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        search_id = serializers.UUIDField(
            help_text="The `search_id` of the search response that showed the product."
        )
        sku = serializers.CharField(
            max_length=64, validators=[NO_NULL_CHARACTERS], help_text="The product's sku."
        )
        type = serializers.ChoiceField(
            choices=SearchEvent.Kind.values, help_text="`click` (the shopper opened it) or `add_to_cart`."
        )

        class Meta:
            ref_name = "SearchEventInput"

    class OutputSerializer(serializers.Serializer):
        position = serializers.IntegerField(
            help_text="The product's position in the search's ranking (1 is first)."
        )

        class Meta:
            ref_name = "SearchEventAccepted"

    @extend_schema(
        request=InputSerializer,
        responses={
            202: OutputSerializer,
            **COMMON_ERRORS,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Invalid event: a field's messages, e.g. an unknown `search_id`, or a `sku` "
                "that search did not show.",
            ),
        },
        operation_id="search_event",
    )
    def post(self, request: Request) -> Response:
        reject_unknown_parameters(request.query_params.keys(), [])
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["Send a JSON object: {search_id, sku, type}."]})
        serializer = self.InputSerializer(data=request.data)
        reject_unknown_parameters(request.data.keys(), serializer.fields.keys())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            position = search_event_record(
                search_id=str(data["search_id"]), sku=data["sku"], kind=data["type"]
            )
        except EventRejected as error:
            raise ValidationError({error.field: [str(error)]}) from error
        return Response({"position": position}, status=202)
