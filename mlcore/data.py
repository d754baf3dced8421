"""Catalogue records shared by training, evaluation and the Django side, plus the JSONL/splits loader."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from mlcore.product_text import text_variants
from mlcore.splits import split_skus


@dataclass(frozen=True)
class CatalogItem:
    """One product: the pair (photo, title) the model learns to match, plus the labels metrics use."""

    product_id: str
    title: str
    # A file path or an already opened PIL image.
    image: str | Path | Image.Image
    article_type: str = ""
    colour: str = ""
    gender: str = ""
    brand: str = ""
    description: str = ""
    # The photo's content key in a PhotoFeatureStore (mlcore.photo_features); "" when it has none.
    image_key: str = ""
    # The product's further photos (paths or PIL images) and their content keys ("" for one without),
    # for training: TrainingConfig.further_photo_share. Evaluation reads `image` alone.
    further_images: tuple[str | Path | Image.Image, ...] = ()
    further_image_keys: tuple[str, ...] = ()
    # Other texts that name the product (mlcore.product_text.text_variants), for training.
    texts: tuple[str, ...] = ()
    # Queries shoppers found the product with (clicked it from), for training: TrainingConfig.clicked_share.
    clicked_texts: tuple[str, ...] = ()

    @property
    def title_key(self) -> str:
        """Products whose titles match case-insensitively count as the same product for retrieval."""
        return " ".join(self.title.lower().split())

    @property
    def type_colour_gender(self) -> tuple[str, str, str]:
        """The fine category `category_p@10` compares: same article type, colour and gender."""
        return (self.article_type, self.colour, self.gender)


def load_catalog(
    catalog_path: str | Path, split_file: str | Path | None = None, split: str | None = None
) -> list[CatalogItem]:
    """Read a catalog.jsonl (image paths relative to it) and keep the products of one split, if given."""
    catalog_path = Path(catalog_path)
    root = catalog_path.parent
    keep: set[str] | None = None
    if split is not None:
        if split_file is None:
            raise ValueError("a split was asked for but no split file was given (pass --split-file)")
        keep = split_skus(split_file=split_file, split=split)
    items = []
    with catalog_path.open() as lines:
        for line in lines:
            if not line.strip():
                continue
            row = json.loads(line)
            sku = str(row["sku"])
            if keep is not None and sku not in keep:
                continue
            image = str(row["image"])
            items.append(
                CatalogItem(
                    product_id=sku,
                    title=row["title"],
                    image=str(root / image),
                    further_images=tuple(
                        str(root / path) for path in photo_paths(image, row.get("images"))[1:]
                    ),
                    article_type=row.get("article_type") or "",
                    colour=row.get("colour") or "",
                    gender=row.get("gender") or "",
                    brand=row.get("brand") or "",
                    description=row.get("description") or "",
                    texts=text_variants(row),
                )
            )
    if keep is not None and not items:
        raise ValueError(f"no product of split {split!r} was found in {catalog_path}")
    return items


def photo_paths(image: str | None, images: list[str] | str | None) -> list[str]:
    """A catalogue row's photos, the main one first: `image`, then the paths of `images` (a list, or
    paths joined by "|") it does not already name. Shops write `images` both ways, as every photo or as
    the further ones beside `image`; either way `image` is the main photo."""
    if isinstance(images, str):
        images = images.split("|")
    paths = ([image] if image else []) + list(images or [])
    return [path for path in dict.fromkeys(path.strip() for path in paths) if path]


def identity_labels(items: list[CatalogItem], identity: str = "title") -> list[int]:
    """Integer class per item: equal for products that should be treated as the same one by the losses."""
    if identity not in ("title", "sku"):
        raise ValueError(f"identity must be 'title' or 'sku', not {identity!r}")
    classes: dict[str, int] = {}
    labels = []
    for item in items:
        key = item.title_key if identity == "title" else item.product_id
        labels.append(classes.setdefault(key, len(classes)))
    return labels


def normalised_article_type(article_type: str) -> str:
    """The article type as the category head and the category losses name it: trimmed, lower case."""
    return article_type.strip().lower()


def category_names(items: list[CatalogItem]) -> list[str]:
    """The items' distinct article_types (normalised, sorted): the classes a model's category head scores."""
    return sorted({normalised_article_type(item.article_type) for item in items})


def category_labels(items: list[CatalogItem], names: list[str] | None = None) -> list[int]:
    """Integer class per item's article_type (an empty type is a class of its own), for the category losses.
    With `names`, the class is the type's index there (every item's type must be in it)."""
    if names is not None:
        index = {name: position for position, name in enumerate(names)}
        missing = sorted({normalised_article_type(item.article_type) for item in items} - set(index))
        if missing:
            raise ValueError(f"article types missing from the category names: {missing[:10]}")
        return [index[normalised_article_type(item.article_type)] for item in items]
    classes: dict[str, int] = {}
    return [classes.setdefault(normalised_article_type(item.article_type), len(classes)) for item in items]
