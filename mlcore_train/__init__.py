"""mlcore_train: training for the mlcore retrieval model (trainer, losses, feature cache, command line,
training curves, model card), kept apart from the serving library as open_clip keeps `open_clip_train`.

It imports mlcore; mlcore never imports it. `python -m mlcore_train train|evaluate|describe|model-card`.
"""
