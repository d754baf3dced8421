"""mlcore: the cross-modal (product image <-> product title) retrieval model, in plain PyTorch.

Nothing in this package imports Django; the web side builds `CatalogItem` records from its database and
calls `mlcore.training.train`, `mlcore.evaluation.evaluate` and `mlcore.inference.Encoder`.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
