"""Where a training step's embeddings come from: the items' photos and titles, or what cpu-fast mode computed
once from them (cached trunk-prefix maps, pooled features of a frozen trunk or MiniLM, the hidden states
entering MiniLM's trained layers). Each source gives embeddings for item indices during training and the
eval-mode embeddings of all its items for validation."""

from __future__ import annotations

import random

import torch

from mlcore.config import TrainingConfig
from mlcore.data import CatalogItem
from mlcore.embedding import encode_photos, encode_prefix_maps, encode_titles
from mlcore.fashion_vocabulary import vocabulary_variants
from mlcore.image_preprocessing import preprocess
from mlcore.model import DualEncoder
from mlcore.photo_features import PhotoFeatureStore
from mlcore.text_tower import BertTextTower
from mlcore_train.feature_cache import compute_prefix_maps

# Groups of similar length a training step runs MiniLM's trained layers on (TextFeatureSource).
LENGTH_GROUPS = 4


class ImageFeatureSource:
    """Gives (batch, embed_dim) image embeddings for item indices, from cached maps or from photos."""

    def __init__(
        self,
        model: DualEncoder,
        items: list[CatalogItem],
        config: TrainingConfig,
        device: torch.device,
        cache: bool,
        rng: random.Random,
        progress: bool,
        store: PhotoFeatureStore | None = None,
        further_photos: bool = False,
    ):
        self.model, self.items, self.config, self.device, self.rng = model, items, config, device, rng
        self.cached = cache
        self.maps = self.mirrored_maps = None
        # Fully frozen trunk: pooled features (and those of mirrored maps) are computed once, and a
        # step trains the projection head alone.
        self.features = self.mirrored_features = None
        # Rows 0..n-1 are the items' main photos; with `further_photos` (and a share to train on them)
        # the items' further photos follow, and further_rows[i] lists item i's.
        share = config.further_photo_share if further_photos else 0.0
        self.photos, photo_keys, self.further_rows = _photo_rows(items, further=share > 0)
        self.further_share = share if any(self.further_rows) else 0.0
        # A generator of its own: a catalogue without further photos draws nothing from it, so its runs
        # stay as they were.
        self.photo_rng = random.Random(config.seed)
        if cache:
            images = self.photos
            # The shop's stored features when every photo has its content key.
            keys = photo_keys if all(photo_keys) else None
            self.maps = compute_prefix_maps(
                model.image_tower,
                images,
                config.inference_batch_size,
                cache_dir=config.feature_cache_dir,
                device=device,
                progress=progress,
                store=store,
                keys=keys,
            )
            if config.cache_flipped_images and config.augment:
                self.mirrored_maps = compute_prefix_maps(
                    model.image_tower,
                    images,
                    config.inference_batch_size,
                    mirrored=True,
                    cache_dir=config.feature_cache_dir,
                    device=device,
                    progress=progress,
                    store=store,
                    keys=keys,
                )
            if model.image_tower.tail_is_frozen:
                self.features = self._pooled(self.maps)
                if config.augment or model.image_tower.mirror_average:
                    mirrored = self.mirrored_maps if self.mirrored_maps is not None else self.maps.flip(-1)
                    self.mirrored_features = self._pooled(mirrored)

    @torch.no_grad()
    def _pooled(self, maps: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        tower = self.model.image_tower
        was_training = tower.training
        tower.eval()
        pooled = torch.cat(
            [
                tower.pooled_features(maps[start : start + batch_size].to(self.device).float()).cpu()
                for start in range(0, len(maps), batch_size)
            ]
        )
        tower.train(was_training)
        return pooled

    def _photo_indices(self, indices: list[int]) -> list[int]:
        """The photo row each item of the batch trains on: its main photo, or for `further_share` of the
        items with further photos one of those."""
        if not self.further_share:
            return indices
        chosen = list(indices)
        for position, index in enumerate(indices):
            further = self.further_rows[index]
            if further and self.photo_rng.random() < self.further_share:
                chosen[position] = self.photo_rng.choice(further)
        return chosen

    def train_embeddings(self, indices: list[int]) -> torch.Tensor:
        tower = self.model.image_tower
        indices = self._photo_indices(indices)
        if not self.cached:
            pixels = torch.stack(
                [
                    preprocess(
                        self.photos[i],
                        tower.image_size,
                        tower.normalisation,
                        rng=self.rng if self.config.augment else None,
                    )
                    for i in indices
                ]
            )
            return self.model.encode_image(pixels.to(self.device))
        index = torch.tensor(indices)
        if self.features is not None:
            features = self.features[index]  # (batch, feature_dim)
            if self.mirrored_features is not None and self.config.augment:
                flip = torch.rand(len(indices)) < 0.5
                features = torch.where(flip[:, None], self.mirrored_features[index], features)
            return tower.project(features.to(self.device))
        assert self.maps is not None  # cached mode
        maps = self.maps[index].float()  # (batch, C, h, w)
        if self.config.augment:
            flip = torch.rand(len(indices)) < 0.5
            if self.mirrored_maps is not None:
                maps[flip] = self.mirrored_maps[index[flip]].float()
            else:
                # Mirroring a 7x7 deep map approximates the map of the mirrored photo (ImageNet training
                # used flips, so the trunk is close to flip-equivariant) at no extraction cost.
                maps[flip] = maps[flip].flip(-1)
        return tower.forward_tail(maps.to(self.device))

    def eval_embeddings(self) -> torch.Tensor:
        """Eval-mode embeddings of the items' main photos."""
        main = len(self.items)
        if self.features is not None:
            with torch.inference_mode():
                tower = self.model.image_tower
                embeddings = tower.project(self.features[:main].to(self.device))
                if tower.mirror_average:
                    assert self.mirrored_features is not None  # computed whenever mirror averaging is on
                    mirrored = tower.project(self.mirrored_features[:main].to(self.device))
                    embeddings = tower.average_with_mirror(embeddings, mirrored)
                return self.model.retrieval_embedding(embeddings).float().cpu()
        if self.maps is not None:
            return encode_prefix_maps(self.model, self.maps[:main], device=self.device)
        return encode_photos(
            self.model,
            [item.image for item in self.items],
            batch_size=self.config.inference_batch_size,
            device=self.device,
        )


def _photo_rows(items: list[CatalogItem], *, further: bool) -> tuple[list, list[str], list[tuple[int, ...]]]:
    """Every photo to compute features of (the items' main photos in item order, then, with `further`,
    their further photos), the photos' content keys ("" without one), and the rows of each item's
    further photos."""
    photos: list = [item.image for item in items]
    keys = [item.image_key for item in items]
    further_rows: list[tuple[int, ...]] = []
    for item in items:
        rows = []
        for position, image in enumerate(item.further_images if further else ()):
            rows.append(len(photos))
            photos.append(image)
            known = item.further_image_keys
            keys.append(known[position] if position < len(known) else "")
        further_rows.append(tuple(rows))
    return photos, keys, further_rows


# Pooled features of a frozen MiniLM, shared by runs in one process (e.g. the rows of bench/quality.py)
# that use the same encoder weights on the same titles.
_FROZEN_TEXT_FEATURES: dict[tuple, torch.Tensor] = {}


def _encoder_fingerprint(tower: BertTextTower) -> tuple:
    parameters = list(tower.encoder.parameters())
    return tuple(round(float(p.detach().double().sum()), 6) for p in (parameters[0], parameters[-1]))


class TextFeatureSource:
    """Gives (batch, embed_dim) text embeddings for item indices: each item's title, or with
    `variant_share` > 0 one of its other texts (CatalogItem.texts) for that share of the pairs, drawn
    by a generator of its own; with `synonym_share` > 0 that share of the chosen texts that name a garment
    term of mlcore.fashion_vocabulary is trained with the term swapped for another of its group. In
    cpu-fast mode MiniLM's frozen part runs once per text: a frozen encoder keeps its pooled features,
    so a step trains the projection alone; one with its last layers trained keeps the hidden states
    entering them, so a step runs only those layers. Evaluation reads the titles."""

    def __init__(
        self,
        model: DualEncoder,
        items: list[CatalogItem],
        device: torch.device,
        cache: bool,
        variant_share: float = 0.0,
        seed: int = 0,
        clicked_share: float = 0.0,
        synonym_share: float = 0.0,
    ):
        self.model, self.device = model, device
        self.variant_share = variant_share
        self.clicked_share = clicked_share
        self.synonym_share = synonym_share
        self.rng = random.Random(seed)
        # Titles first (text i is item i's title), then every item's other texts, then clicked queries.
        self.titles = [item.title for item in items]
        self.variants: list[list[int]] = [[] for _ in items]
        self.clicked: list[list[int]] = [[] for _ in items]
        texts = list(self.titles)
        if variant_share > 0:
            for index, item in enumerate(items):
                self.variants[index] = list(range(len(texts), len(texts) + len(item.texts)))
                texts.extend(item.texts)
        if clicked_share > 0:
            for index, item in enumerate(items):
                self.clicked[index] = list(range(len(texts), len(texts) + len(item.clicked_texts)))
                texts.extend(item.clicked_texts)
        # Text index -> the indices of its versions with a garment term swapped.
        self.swapped: dict[int, list[int]] = {}
        if synonym_share > 0:
            for index in range(len(texts)):
                versions = vocabulary_variants(texts[index])
                if versions:
                    self.swapped[index] = list(range(len(texts), len(texts) + len(versions)))
                    texts.extend(versions)
        self.texts = texts
        self.token_ids = model.tokenizer.encode_ids(self.texts)
        self.pooled: torch.Tensor | None = None
        self.frozen_states: list[torch.Tensor] | None = None
        tower = model.text_tower
        if cache and isinstance(tower, BertTextTower) and tower.is_frozen:
            key = (_encoder_fingerprint(tower), tuple(self.texts))
            if key not in _FROZEN_TEXT_FEATURES:
                _FROZEN_TEXT_FEATURES[key] = self._pooled_features(tower)
            self.pooled = _FROZEN_TEXT_FEATURES[key]
        elif cache and isinstance(tower, BertTextTower) and tower.frozen_layer_count > 0:
            self.frozen_states = self._frozen_states(tower)

    def _frozen_states(self, tower: BertTextTower, batch_size: int = 256) -> list[torch.Tensor]:
        """Per text, the (length, hidden) output of the embeddings and frozen layers, unpadded. Texts run
        in order of length, so a chunk of titles is not padded to a description's length."""
        states: list[torch.Tensor] = [torch.empty(0)] * len(self.texts)
        order = sorted(range(len(self.texts)), key=lambda i: len(self.token_ids[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            tokens = self.model.tokenizer.pad([self.token_ids[i] for i in chunk]).to(self.device)
            hidden = tower.frozen_hidden_states(tokens.token_ids, tokens.attention_mask).float().cpu()
            for row, index in enumerate(chunk):
                states[index] = hidden[row, : len(self.token_ids[index])].clone()
        return states

    @torch.no_grad()
    def _pooled_features(self, tower: BertTextTower, batch_size: int = 256) -> torch.Tensor:
        was_training = tower.training
        tower.eval()
        order = sorted(range(len(self.texts)), key=lambda i: len(self.token_ids[i]))
        pooled = torch.empty(len(self.texts), tower.hidden_size)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            tokens = self.model.tokenizer.pad([self.token_ids[i] for i in chunk]).to(self.device)
            pooled[torch.tensor(chunk)] = (
                tower.pooled_features(tokens.token_ids, tokens.attention_mask).float().cpu()
            )
        tower.train(was_training)
        return pooled

    def _text_indices(self, indices: list[int]) -> list[int]:
        """The text each item trains with in this batch (`_chosen_texts`), with probability synonym_share
        one of its versions with a garment term swapped where it has any."""
        chosen = self._chosen_texts(indices)
        if self.synonym_share <= 0:
            return chosen
        for position, text in enumerate(chosen):
            versions = self.swapped.get(text)
            if versions and self.rng.random() < self.synonym_share:
                chosen[position] = self.rng.choice(versions)
        return chosen

    def _chosen_texts(self, indices: list[int]) -> list[int]:
        """With probability clicked_share one of the queries the item was clicked from, if any; else with
        probability variant_share one of its other texts, if it has any; else its title."""
        if self.variant_share <= 0 and self.clicked_share <= 0:
            return list(indices)
        chosen = []
        for index in indices:
            clicked = self.clicked[index]
            if clicked and self.rng.random() < self.clicked_share:
                chosen.append(self.rng.choice(clicked))
                continue
            if self.variant_share <= 0:
                chosen.append(index)
                continue
            variants = self.variants[index]
            use_variant = self.rng.random() < self.variant_share
            chosen.append(self.rng.choice(variants) if variants and use_variant else index)
        return chosen

    def train_embeddings(self, indices: list[int]) -> torch.Tensor:
        indices = self._text_indices(indices)
        if self.pooled is not None:
            return self.model.text_tower.projection(self.pooled[torch.tensor(indices)].to(self.device))
        if self.frozen_states is not None:
            return self._trained_layers_by_length([self.frozen_states[i] for i in indices])
        tokens = self.model.tokenizer.pad([self.token_ids[i] for i in indices]).to(self.device)
        return self.model.encode_text(tokens.token_ids, tokens.attention_mask)

    def _trained_layers_by_length(self, rows: list[torch.Tensor]) -> torch.Tensor:
        """The trained layers on these texts' kept states, run on LENGTH_GROUPS groups of similar
        length: padded to one length, a batch whose texts include a few long ones (product texts,
        description sentences) would run every title at the longest text's length. Each text's
        result does not depend on the others in its group."""
        order = sorted(range(len(rows)), key=lambda row: len(rows[row]))
        group_size = -(-len(order) // LENGTH_GROUPS)
        parts = []
        for start in range(0, len(order), group_size):
            group = [rows[row] for row in order[start : start + group_size]]
            hidden = torch.nn.utils.rnn.pad_sequence(group, batch_first=True)  # (group, length, hidden)
            lengths = torch.tensor([len(row) for row in group])
            mask = (torch.arange(hidden.shape[1])[None, :] < lengths[:, None]).long()
            parts.append(
                self.model.text_tower.forward_from_frozen(hidden.to(self.device), mask.to(self.device))
            )
        position = torch.empty(len(order), dtype=torch.long)
        position[torch.tensor(order)] = torch.arange(len(order))
        return torch.cat(parts)[position.to(self.device)]

    def eval_embeddings(self) -> torch.Tensor:
        if self.pooled is not None:
            titles = self.pooled[: len(self.titles)]
            with torch.inference_mode():
                return (
                    self.model.retrieval_embedding(self.model.text_tower.projection(titles.to(self.device)))
                    .float()
                    .cpu()
                )
        return encode_titles(self.model, self.titles, device=self.device)
