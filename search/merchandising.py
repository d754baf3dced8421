"""Merchandising rules applied to a whole candidate ranking, before the page is cut from it.

The selectors hand `merchandising_apply` every candidate they ranked, so a rule acts on the ranking
and not on one page: a hidden product never appears, a boost moves products across pages, a pinned
product takes its position on whatever page that falls (and is fetched when the ranking lacks it).

Order: hide, then boost and bury, then pins. Boost and bury move a product by `shift` positions (its
rules add up), or with no shift before (after) every product that is not boosted (buried), each
group keeping its order. Pins take their positions last, so nothing moves a pinned product.

Rules are read once per MERCHANDISING_CACHE_S per process (a save in the admin clears this process's
copy at once), so a search with no rule in force costs no query.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from search.conf import search_settings
from search.models import MerchandisingRule
from search.query_text import query_normalize
from search.ranking import ATTRIBUTE_NAMES, RESULT_SELECT, Candidate, SearchFilters
from search.read_replica import search_connection

# Rule fields that a candidate's own attributes answer; the others are read from the product rows.
CANDIDATE_FIELDS = {"brand", "article_type", "colour", "gender"}


@dataclasses.dataclass(frozen=True)
class _RulesSnapshot:
    rules: tuple[MerchandisingRule, ...]
    read_at: float


_snapshot: _RulesSnapshot | None = None
_lock = threading.Lock()


def merchandising_rules_forget() -> None:
    """Read the rules again at the next search (called when one is saved or deleted)."""
    global _snapshot
    with _lock:
        _snapshot = None


def _rules_not_ended() -> tuple[MerchandisingRule, ...]:
    global _snapshot
    snapshot = _snapshot
    if snapshot is None or time.monotonic() - snapshot.read_at > float(search_settings.MERCHANDISING_CACHE_S):
        rules = MerchandisingRule.objects.filter(is_enabled=True).filter(
            Q(ends_at__isnull=True) | Q(ends_at__gt=timezone.now())
        )
        snapshot = _RulesSnapshot(rules=tuple(rules.order_by("id")), read_at=time.monotonic())
        with _lock:
            _snapshot = snapshot
    return snapshot.rules


def _in_force(rule: MerchandisingRule, *, now: datetime, query: str | None, article_types: set[str]) -> bool:
    if (rule.starts_at and rule.starts_at > now) or (rule.ends_at and rule.ends_at <= now):
        return False
    if rule.query.strip() and (query is None or query_normalize(rule.query) != query):
        return False
    return not (rule.article_type.strip() and rule.article_type.strip().lower() not in article_types)


def merchandising_rules_for(*, query: str | None, filters: SearchFilters) -> list[MerchandisingRule]:
    """The rules that apply to this search now: unscoped ones, those of its query (case and spacing
    ignored), those of the category it is filtered to."""
    rules = _rules_not_ended()
    if not rules:
        return []
    normalized = None if query is None else query_normalize(query)
    article_types = {value.strip().lower() for value in filters.values.get("article_type", ())}
    now = timezone.now()
    return [rule for rule in rules if _in_force(rule, now=now, query=normalized, article_types=article_types)]


def _matching_products(rule: MerchandisingRule, ranking: Sequence[Candidate]) -> set[int]:
    """The candidates a boost or bury rule names."""
    value = rule.value.strip().lower()
    if rule.field in CANDIDATE_FIELDS:
        return {
            c.product_id for c in ranking if str(c.attributes.get(rule.field) or "").strip().lower() == value
        }
    ids = [candidate.product_id for candidate in ranking]
    with search_connection().cursor() as cursor:
        if rule.field == MerchandisingRule.Field.ATTRIBUTE:
            # Attribute names as the shop wrote them ("Pattern"), compared without case like values.
            cursor.execute(
                "SELECT p.id FROM catalog_product p, jsonb_each_text(p.attributes) a "
                "WHERE p.id = ANY(%s) AND lower(a.key) = %s AND lower(trim(a.value)) = %s",
                [ids, rule.attribute_name.strip().lower(), value],
            )
        else:
            column = {"master_category": "master_category", "sub_category": "sub_category"}[rule.field]
            cursor.execute(
                f"SELECT id FROM catalog_product WHERE id = ANY(%s) AND lower(trim({column})) = %s",
                [ids, value],
            )
        return {row[0] for row in cursor.fetchall()}


def _shifted(ranking: list[Candidate], rules: Sequence[MerchandisingRule]) -> list[Candidate]:
    all_the_way = len(ranking) + 1
    shift: dict[int, int] = {}
    for rule in rules:
        step = all_the_way if rule.shift is None else int(rule.shift)
        sign = -1 if rule.action == MerchandisingRule.Action.BOOST else 1
        for product_id in _matching_products(rule, ranking):
            shift[product_id] = shift.get(product_id, 0) + sign * step
    if not shift:
        return ranking

    def position(index: int) -> tuple[int, int, int]:
        moved = shift.get(ranking[index].product_id, 0)
        # On arriving at a place, a boosted product goes before the one there, a buried one after it.
        return index + moved, (moved > 0) - (moved < 0), index

    order = sorted(range(len(ranking)), key=position)
    return [ranking[index] for index in order]


def _pinned_candidates(product_ids: list[int], filters: SearchFilters) -> dict[int, Candidate]:
    """Pinned products the ranking lacks, if they pass the search's filters (a shopper who filtered to
    red is not shown a pinned blue shirt) and are active."""
    restricted = dataclasses.replace(filters, product_ids=tuple(product_ids))
    where, params = restricted.where_sql()
    with search_connection().cursor() as cursor:
        cursor.execute(f"SELECT p.id, {RESULT_SELECT} FROM catalog_product p WHERE {where}", params)
        rows = cursor.fetchall()
    return {
        row[0]: Candidate(row[0], 0.0, None, None, dict(zip(ATTRIBUTE_NAMES, row[1:], strict=True)))
        for row in rows
    }


def _pinned(
    ranking: list[Candidate], pins: Sequence[MerchandisingRule], filters: SearchFilters
) -> list[Candidate]:
    by_product: dict[int, int] = {}
    for rule in sorted(pins, key=lambda rule: (int(rule.position or 1), rule.pk)):
        if rule.product_id is not None:
            by_product.setdefault(rule.product_id, int(rule.position or 1))
    present = {candidate.product_id: candidate for candidate in ranking}
    missing = [product_id for product_id in by_product if product_id not in present]
    fetched = _pinned_candidates(missing, filters) if missing else {}
    rest = [candidate for candidate in ranking if candidate.product_id not in by_product]
    for product_id, position in sorted(by_product.items(), key=lambda item: (item[1], item[0])):
        pinned = present.get(product_id) or fetched.get(product_id)
        if pinned is None:
            continue
        index = min(position - 1, len(rest))
        # A pinned product shows the score of the one whose place it takes (scores compare within a
        # response only), so a client sorting by score keeps the shop's order.
        neighbour = rest[index] if index < len(rest) else (rest[-1] if rest else None)
        if neighbour is not None:
            pinned = dataclasses.replace(pinned, score=neighbour.score)
        rest.insert(index, pinned)
    return rest


def merchandising_hidden_product_ids(*, query: str | None, filters: SearchFilters) -> frozenset[int]:
    """The products a hide rule in force keeps out of this search (its facets do not count them)."""
    return frozenset(
        rule.product_id
        for rule in merchandising_rules_for(query=query, filters=filters)
        if rule.action == MerchandisingRule.Action.HIDE and rule.product_id is not None
    )


def merchandising_apply(
    *, ranking: list[Candidate], query: str | None, filters: SearchFilters
) -> list[Candidate]:
    """The ranking with the rules that apply to this search (see the module's docstring)."""
    rules = merchandising_rules_for(query=query, filters=filters)
    if not rules:
        return ranking
    actions = {
        action: [rule for rule in rules if rule.action == action] for action in MerchandisingRule.Action
    }
    hidden = {rule.product_id for rule in actions[MerchandisingRule.Action.HIDE]}
    ranking = [candidate for candidate in ranking if candidate.product_id not in hidden]
    ranking = _shifted(
        ranking, actions[MerchandisingRule.Action.BOOST] + actions[MerchandisingRule.Action.BURY]
    )
    pins = [rule for rule in actions[MerchandisingRule.Action.PIN] if rule.product_id not in hidden]
    return _pinned(ranking, pins, filters) if pins else ranking


def merchandising_rule_save(*, rule: MerchandisingRule) -> MerchandisingRule:
    """Validate and save a rule; this process applies it from the next search (others within
    MERCHANDISING_CACHE_S)."""
    rule.full_clean()
    rule.save()
    merchandising_rules_forget()
    return rule
