"""Settings of the model lifecycle, prefixed `PRODUCT_SEARCH_` like the catalogue's (catalog/conf.py).

A host shop overrides any of them in its Django settings, e.g. `PRODUCT_SEARCH_EMBED_BATCH_SIZE = 64`.
Read lazily and reset on `setting_changed`, so `override_settings` works in tests.
"""

from __future__ import annotations

from typing import Any

from catalog.conf import PluginSettings

DEFAULTS: dict[str, Any] = {
    # HNSW build parameters of the per-version vector indexes (pgvector defaults are 16 / 64).
    "HNSW_M": 16,
    "HNSW_EF_CONSTRUCTION": 64,
    # The most memory (MB) an index build may hold its graph in (maintenance_work_mem for the build, sized
    # to the version's vectors): a graph that outgrows it is finished on disk, many times slower. A
    # parallel build allocates it as shared memory at once.
    "HNSW_BUILD_MEMORY_MB": 4096,
    # Where retrained models are written (one folder per version).
    "MODEL_DIR": None,  # None: <VAR_DIR>/models
    # Device for encoding: "auto" (CUDA when present), "cpu" or "cuda".
    "DEVICE": "auto",
    # What runs the photo trunk on CPU: "torch", or "onnx" (ONNX Runtime, the `onnx` extra; exported
    # from the checkpoint on first use and cached by its digest). Without onnxruntime, or on a GPU,
    # "onnx" logs why and runs PyTorch. BENCHMARKS.md, "Embedding at scale", has both measured.
    "ENCODER_RUNTIME": "torch",
    # Encoders kept loaded per process (the active one and one being built).
    "LOADED_MODELS_PER_PROCESS": 2,
    # Products per embedding batch: one transaction, one forward pass.
    "EMBED_BATCH_SIZE": 32,
    # Products per batch when a whole version is embedded (a new model, `embed --all`): larger batches
    # spend less of the pass on queries and small tensor operations; edits of a batch's products wait
    # for its transaction (bench/embedding_throughput.py measures both sizes).
    "EMBED_BACKFILL_BATCH_SIZE": 256,
    # Celery queues an embedding run is sent to. None: one run, on the queue Celery routes
    # `embed_pending` to (`embed` in workers/celery_app.py). A list, e.g. ["embed", "train"]: one run on
    # each, so that the workers of every queue share the dirty products (claimed FOR UPDATE SKIP LOCKED,
    # so none is embedded twice): a GPU `train` worker then helps embed a large import.
    "EMBED_QUEUES": None,
    # A retrained version is activated only if it beats the active one by this much on the held-out
    # products: search mAP@10 in percent on the shop's own queries when search measured both
    # (search/tuning.py), else the difference of the model's R@1+R@5+R@10 sums over both directions.
    "ACTIVATION_MARGIN": 0.0,
    # ... and by more than this many standard errors of the difference, when search measured both on
    # the same queries: the new version's settings are chosen on those queries, so a tie would
    # otherwise switch on noise. 0 switches on any gain.
    "ACTIVATION_NOISE_Z": 1.0,
    # Retired versions whose vectors are kept (for a quick rollback); older ones are deleted.
    "KEEP_RETIRED_VERSIONS": 1,
    # A training or embedding version with no progress for this long is treated as abandoned.
    "ABANDONED_AFTER_S": 3600,
    # Share of the products held out to measure a retrained model (when no split file is given).
    "VALIDATION_SHARE": 0.1,
    # Minutes a retrain's epochs may take, so that a retrain ends in minutes on a CPU: the epochs and
    # their learning-rate schedule are fitted to it after the first epoch (which always runs). The
    # features before (read from the store once photos are embedded) and the measuring, embedding and
    # switching after take the rest. None: epochs run until early stopping or the recipe's count.
    "RETRAIN_TRAINING_MINUTES": 6.0,
    # Category block weights a retrained model chooses among on the held-out products, after training
    # (mlcore's TrainingConfig.category_block_weights): how much the agreement of the predicted garment
    # types counts in the ranking suits some shops' photos more than others'. Empty: keep the recipe's.
    "RETRAIN_CATEGORY_BLOCK_WEIGHTS": (0.05, 0.1, 0.2, 0.3, 0.4),
    # Share of a retrain's training pairs that use another text of the product (its attribute phrase,
    # product text or a description sentence, mlcore's TrainingConfig.text_variant_share) instead of
    # its title, so that shoppers' colour-and-type queries and description words land near its photos
    # too; where the shop wrote no colour, the phrase names the one read from the photo. It searched
    # better on the shops measured, but MiniLM's frozen part then runs over every product's longer
    # texts at each retrain, which took a 10k-product retrain past ten minutes (docs/mlcore.md).
    # None: the active model's recipe (titles alone for the shipped one).
    "RETRAIN_TEXT_VARIANT_SHARE": None,
}

lifecycle_settings = PluginSettings(DEFAULTS)
