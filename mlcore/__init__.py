"""mlcore: the cross-modal (product image <-> product title) retrieval model, in plain PyTorch: the serving
library (model, checkpoints, `mlcore.inference.Encoder`, `mlcore.evaluation.evaluate`).

Nothing in this package imports Django, and nothing here imports the training package `mlcore_train` (nor
tqdm or matplotlib), so a web process that loads the encoder pulls in no training code. The web side builds
`CatalogItem` records from its database and calls `mlcore.inference.Encoder` and `mlcore.evaluation.evaluate`;
retraining calls `mlcore_train.trainer.train`.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
