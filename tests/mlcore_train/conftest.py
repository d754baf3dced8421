"""The training tests use the serving tests' synthetic catalogue and their per-test feature cache folder."""

from tests.mlcore.conftest import isolated_feature_cache, synthetic_catalog  # noqa: F401
