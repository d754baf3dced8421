"""Search settings chosen per shop at retrain, and search using the active version's settings."""

import pytest

from search.conf import search_setting_for_version
from search.ranking import Candidate
from search.tuning import fused_order, settings_choose


def test_the_best_scoring_settings_are_chosen():
    grid = {("vector", 0.0): 0.40, ("vector", 0.3): 0.52, ("hybrid", 0.0): 0.61, ("hybrid", 0.3): 0.58}
    assert settings_choose(grid, default_mode="vector", default_weight=0.0) == ("hybrid", 0.0)


def test_a_tie_keeps_the_defaults_then_less_photo_weight_and_vector():
    tied = {("vector", 0.0): 0.5, ("vector", 0.5): 0.5, ("hybrid", 0.5): 0.5}
    assert settings_choose(tied, default_mode="hybrid", default_weight=0.5) == ("hybrid", 0.5)
    assert settings_choose(tied, default_mode="hybrid", default_weight=0.9) == ("vector", 0.0)


def test_a_photo_weight_reorders_the_same_candidates_as_the_ranking_sql_would():
    photo_led = Candidate(1, 0.0, image_similarity=0.9, text_similarity=0.1, attributes={})
    text_led = Candidate(2, 0.0, image_similarity=0.2, text_similarity=0.8, attributes={})
    assert [c.product_id for c in fused_order([photo_led, text_led], 1.0)] == [1, 2]
    assert [c.product_id for c in fused_order([photo_led, text_led], 0.0)] == [2, 1]


class _Version:
    def __init__(self, search_settings):
        self.search_settings = search_settings


def test_search_uses_the_versions_tuned_setting_unless_the_host_sets_one(settings):
    tuned = _Version({"IMAGE_WEIGHT": 0.7, "DEFAULT_MODE": "vector"})
    assert search_setting_for_version("IMAGE_WEIGHT", tuned) == 0.7
    assert search_setting_for_version("DEFAULT_MODE", tuned) == "vector"
    assert search_setting_for_version("SIMILAR_IMAGE_WEIGHT", tuned) == 0.1  # not tuned: the default
    assert search_setting_for_version("IMAGE_WEIGHT", None) == 0.0

    settings.PRODUCT_SEARCH_IMAGE_WEIGHT = 0.2  # the shop's own choice wins over tuning
    assert search_setting_for_version("IMAGE_WEIGHT", tuned) == 0.2
    with pytest.raises(ValueError, match="not a tuned setting"):
        search_setting_for_version("MAX_LIMIT", tuned)
