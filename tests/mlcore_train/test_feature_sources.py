"""Feature sources: what cpu-fast mode computes once must give what running the whole model gives."""

from mlcore.config import ModelConfig, TrainingConfig
from mlcore.data import load_catalog


def test_frozen_minilm_cache_gives_the_same_embeddings_as_running_the_encoder(synthetic_catalog):
    import random

    import torch

    from mlcore.embedding import encode_titles
    from mlcore.model import create_model
    from mlcore_train.feature_sources import ImageFeatureSource, TextFeatureSource

    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")[:5]
    model = create_model(
        ModelConfig(text_branch="bert", text_trainable_layers=0, image_size=64, embed_dim=16)
    )
    cached = TextFeatureSource(model, items, torch.device("cpu"), cache=True)
    assert cached.pooled is not None
    expected = encode_titles(model, [item.title for item in items])
    assert torch.allclose(cached.eval_embeddings(), expected, atol=1e-5)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(
            torch.nn.functional.normalize(cached.train_embeddings([0, 1, 2]), dim=-1), expected[:3], atol=1e-5
        )
    images = ImageFeatureSource(
        model,
        items,
        TrainingConfig(augment=False),
        torch.device("cpu"),
        cache=True,
        rng=random.Random(0),
        progress=False,
    )
    assert images.maps.shape[0] == 5


def test_cached_frozen_minilm_layers_give_the_same_embeddings_as_the_whole_encoder(synthetic_catalog):
    import dataclasses

    import torch

    from mlcore.model import create_model
    from mlcore_train.feature_sources import TextFeatureSource

    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")[:6]
    long_title = "Acme Men Very Long Striped Slim Fit Formal Cotton Blend Shirt"  # others get padded
    items[2] = dataclasses.replace(items[2], title=long_title)
    model = create_model(
        ModelConfig(text_branch="bert", text_trainable_layers=2, image_size=64, embed_dim=16)
    )
    cached = TextFeatureSource(model, items, torch.device("cpu"), cache=True)
    uncached = TextFeatureSource(model, items, torch.device("cpu"), cache=False)
    # Given the first 4 of MiniLM's 6 layers frozen, their outputs are kept per title, unpadded
    assert cached.frozen_states is not None and uncached.frozen_states is None
    assert [len(state) for state in cached.frozen_states] == [len(ids) for ids in cached.token_ids]
    # Then a step (the last 2 layers, pooling, projection) gives what the whole encoder gives
    model.eval()
    with torch.no_grad():
        for batch in ([0, 1, 2], [3, 4, 5], [2]):
            assert torch.allclose(cached.train_embeddings(batch), uncached.train_embeddings(batch), atol=1e-5)
    # And gradients reach the trained layers only
    model.train()
    cached.train_embeddings([0, 1, 2]).sum().backward()
    layers = model.text_tower.encoder.encoder.layer
    assert layers[5].attention.self.query.weight.grad is not None
    assert layers[3].attention.self.query.weight.grad is None


def test_a_step_runs_the_trained_layers_on_groups_of_similar_length(synthetic_catalog, monkeypatch):
    import dataclasses

    import torch

    from mlcore.model import create_model
    from mlcore_train import feature_sources
    from mlcore_train.feature_sources import TextFeatureSource

    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")[:8]
    description = (
        "A soft cotton shirt with a button-down collar, a chest pocket and a curved hem for every day."
    )
    for index in (1, 6):  # two long texts among short titles, out of order
        items[index] = dataclasses.replace(items[index], title=description)
    model = create_model(
        ModelConfig(text_branch="bert", text_trainable_layers=2, image_size=64, embed_dim=16)
    )
    cached = TextFeatureSource(model, items, torch.device("cpu"), cache=True)
    uncached = TextFeatureSource(model, items, torch.device("cpu"), cache=False)
    padded_lengths: list[int] = []
    forward = model.text_tower.forward_from_frozen

    def recording(hidden, attention_mask):
        padded_lengths.extend([hidden.shape[1]] * hidden.shape[0])
        return forward(hidden, attention_mask)

    monkeypatch.setattr(model.text_tower, "forward_from_frozen", recording)
    batch = [6, 0, 1, 2, 3, 4, 5, 7]
    model.eval()
    with torch.no_grad():
        grouped = cached.train_embeddings(batch)
        expected = uncached.train_embeddings(batch)

    assert torch.allclose(grouped, expected, atol=1e-5)  # same texts, same order
    longest = max(len(cached.token_ids[index]) for index in batch)
    assert sum(padded_lengths) < len(batch) * longest  # the short titles were not padded to the longest
    monkeypatch.setattr(feature_sources, "LENGTH_GROUPS", 1)
    padded_lengths.clear()
    with torch.no_grad():
        assert torch.allclose(cached.train_embeddings(batch), expected, atol=1e-5)
    assert padded_lengths == [longest] * len(batch)


def test_a_share_of_pairs_trains_on_the_products_other_texts(synthetic_catalog):
    import dataclasses

    import torch

    from mlcore.embedding import encode_titles
    from mlcore.model import create_model
    from mlcore_train.feature_sources import TextFeatureSource

    catalog, splits = synthetic_catalog
    items = [
        dataclasses.replace(item, texts=(f"variant of {item.title}",))
        for item in load_catalog(catalog, splits, "train")[:4]
    ]
    model = create_model(
        ModelConfig(text_branch="bert", text_trainable_layers=0, image_size=64, embed_dim=16)
    )
    model.eval()
    titles = encode_titles(model, [item.title for item in items])
    variants = encode_titles(model, [item.texts[0] for item in items])

    def trained_with(share: float) -> torch.Tensor:
        source = TextFeatureSource(model, items, torch.device("cpu"), cache=True, variant_share=share, seed=1)
        with torch.no_grad():
            return torch.nn.functional.normalize(source.train_embeddings([0, 1, 2, 3]), dim=-1)

    assert torch.allclose(trained_with(0.0), titles, atol=1e-5)
    assert torch.allclose(trained_with(1.0), variants, atol=1e-5)
    # Validation reads the titles whatever the share.
    source = TextFeatureSource(model, items, torch.device("cpu"), cache=True, variant_share=1.0)
    assert torch.allclose(source.eval_embeddings(), titles, atol=1e-5)


def test_a_product_clicked_from_a_query_trains_on_it_for_the_clicked_share(synthetic_catalog):
    import dataclasses

    import torch

    from mlcore.embedding import encode_titles
    from mlcore.model import create_model
    from mlcore_train.feature_sources import TextFeatureSource

    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")[:4]
    items[0] = dataclasses.replace(items[0], texts=("a variant",), clicked_texts=("what shoppers typed",))
    model = create_model(
        ModelConfig(text_branch="bert", text_trainable_layers=0, image_size=64, embed_dim=16)
    )
    model.eval()
    titles = encode_titles(model, [item.title for item in items])
    clicked = encode_titles(model, ["what shoppers typed"])[0]

    def trained_with(clicked_share: float, variant_share: float = 1.0) -> torch.Tensor:
        source = TextFeatureSource(
            model,
            items,
            torch.device("cpu"),
            cache=True,
            variant_share=variant_share,
            clicked_share=clicked_share,
        )
        with torch.no_grad():
            return torch.nn.functional.normalize(source.train_embeddings([0, 1, 2, 3]), dim=-1)

    assert torch.allclose(trained_with(1.0)[0], clicked, atol=1e-5)
    assert not torch.allclose(trained_with(0.0)[0], clicked, atol=1e-3)  # its variant, then
    # Products nobody clicked train as before: on their titles when no variant is drawn.
    assert torch.allclose(trained_with(1.0, variant_share=0.0)[1:], titles[1:], atol=1e-5)


def test_a_share_of_pairs_trains_with_a_garment_term_swapped_for_a_synonym(synthetic_catalog):
    import dataclasses

    import torch

    from mlcore.embedding import encode_titles
    from mlcore.fashion_vocabulary import vocabulary_variants
    from mlcore.model import create_model
    from mlcore_train.feature_sources import TextFeatureSource

    catalog, splits = synthetic_catalog
    shoes = [item for item in load_catalog(catalog, splits, "train") if item.article_type == "Shoes"][:3]
    items = [dataclasses.replace(shoes[0], title="Men Navy Track Pants"), *shoes[1:]]
    model = create_model(
        ModelConfig(text_branch="bert", text_trainable_layers=0, image_size=64, embed_dim=16)
    )
    model.eval()
    titles = encode_titles(model, [item.title for item in items])
    swapped = encode_titles(model, list(vocabulary_variants("Men Navy Track Pants")))

    def trained_with(share: float) -> torch.Tensor:
        source = TextFeatureSource(model, items, torch.device("cpu"), cache=True, synonym_share=share)
        with torch.no_grad():
            return torch.nn.functional.normalize(source.train_embeddings([0, 1, 2]), dim=-1)

    assert torch.allclose(trained_with(0.0), titles, atol=1e-5)
    with_synonyms = trained_with(1.0)
    assert torch.isclose(with_synonyms[0] @ swapped.T, torch.tensor(1.0), atol=1e-5).any()
    assert not torch.allclose(with_synonyms[0], titles[0], atol=1e-3)
    # Titles without a term of a group train on themselves whatever the share.
    assert torch.allclose(with_synonyms[1:], titles[1:], atol=1e-5)


def _with_further_photos(catalog):
    """The synthetic catalogue with the first two products given further photos: the first a photo of
    another product (so that training on it is visible), the second its own photo listed again."""
    import json

    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    rows[0]["images"] = [rows[5]["image"], rows[6]["image"]]
    rows[1]["images"] = [rows[1]["image"]]
    catalog.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return rows


def test_further_photos_are_read_from_images_beside_the_main_one(synthetic_catalog):
    catalog, splits = synthetic_catalog
    rows = _with_further_photos(catalog)
    items = load_catalog(catalog, splits, "train")

    assert [str(path) for path in items[0].further_images] == [
        str(catalog.parent / rows[5]["image"]),
        str(catalog.parent / rows[6]["image"]),
    ]
    assert items[0].image == str(catalog.parent / rows[0]["image"])
    # The main photo listed again is not a further one.
    assert items[1].further_images == () and items[2].further_images == ()


def _image_source(items, share, further_photos=True):
    import random

    import torch

    from mlcore.model import create_model
    from mlcore_train.feature_sources import ImageFeatureSource

    model = create_model(
        ModelConfig(image_size=64, embed_dim=16, image_trainable_blocks=0, text_trainable_layers=0)
    ).eval()
    config = TrainingConfig(augment=False, further_photo_share=share)
    source = ImageFeatureSource(
        model,
        items,
        config,
        torch.device("cpu"),
        True,
        random.Random(0),
        False,
        further_photos=further_photos,
    )
    return source


def test_a_share_of_training_pairs_use_the_further_photos_and_validation_the_main_ones(synthetic_catalog):
    import torch

    catalog, splits = synthetic_catalog
    _with_further_photos(catalog)
    items = load_catalog(catalog, splits, "train")

    always = _image_source(items, share=1.0)
    # The 16 main photos, then the first product's 2 further ones.
    assert always.features.shape[0] == 18 and always.further_rows[0] == (16, 17)
    with torch.no_grad():
        trained = always.train_embeddings([0, 3] * 20)
        main_photos = always.eval_embeddings()
        further = always.model.image_tower.project(always.features[16:])
        main = always.model.image_tower.project(always.features[[0, 3]])
    assert main_photos.shape[0] == 16
    firsts = trained[0::2]

    def same(a, b):
        return torch.allclose(a, b, atol=1e-5)

    # Item 0 trains on one of its further photos each time, and both are drawn; item 3 on its own.
    assert all(same(row, further[0]) or same(row, further[1]) for row in firsts)
    assert any(same(row, further[0]) for row in firsts) and any(same(row, further[1]) for row in firsts)
    assert not any(same(row, main[0]) for row in firsts)
    assert all(same(row, main[1]) for row in trained[1::2])

    never = _image_source(items, share=0.0)
    val = _image_source(items, share=1.0, further_photos=False)
    # Without a share (or for validation) the further photos are not even computed.
    assert never.features.shape[0] == 16 and val.features.shape[0] == 16
    with torch.no_grad():
        own = never.model.image_tower.project(never.features[:1])
        assert torch.allclose(never.train_embeddings([0]), own, atol=1e-5)


def test_a_catalogue_without_further_photos_draws_nothing_more(synthetic_catalog):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")
    source = _image_source(items, share=0.5)
    state = source.photo_rng.getstate()
    source.train_embeddings(list(range(16)))
    assert source.photo_rng.getstate() == state
