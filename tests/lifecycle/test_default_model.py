import pytest

from lifecycle.default_model import default_model_replaces_active


@pytest.mark.parametrize(
    ("active_name", "replaces"),
    [
        (None, True),  # nothing serves: the shipped model does
        ("default-0123456789", True),  # an older shipped model
        ("default-abcdef0123", False),  # this very one already serves
        ("retrain-20261201-101500", False),  # the shop's own model stays
    ],
)
def test_a_shipped_model_replaces_only_nothing_or_an_older_shipped_one(active_name, replaces):
    assert (
        default_model_replaces_active(active_name=active_name, installed_name="default-abcdef0123")
        is replaces
    )
