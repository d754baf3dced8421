"""Cross-modal losses. Each takes (image_embeddings, text_embeddings, labels) and returns named terms.

`labels` are identity classes: two items with the same label (e.g. same-title products) are matches.
`categories` (optional) are category classes (the article_type), used only by the auxiliary `category` and
`category_nce` losses.
`compute_loss_from_embeddings` holds the maths so it can be checked on raw tensors; `forward` calls it.
Training sums the returned terms (each multiplied by its weight in the loss spec, "cmpm+cmpc+0.5*category").
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mlcore.similarity import cosine_logits


def match_matrix(labels: torch.Tensor) -> torch.Tensor:
    """(batch,) -> (batch, batch) float, 1 where two items share an identity."""
    return (labels.unsqueeze(0) == labels.unsqueeze(1)).float()


def infonce_with_matches(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    matches: torch.Tensor,
    logit_scale: torch.Tensor,
    name: str,
) -> dict[str, torch.Tensor]:
    """Symmetric InfoNCE on cosine logits whose target spreads evenly over every match of the query (the
    same product for `infonce`, the same category for `category_nce`). The scale is capped at 100 (CLIP)."""
    scale = logit_scale.clamp(max=math.log(100)).exp()
    logits = scale * F.normalize(image_embeddings, dim=-1) @ F.normalize(text_embeddings, dim=-1).t()
    targets = matches / matches.sum(dim=1, keepdim=True)
    return {
        f"{name}_i2t": -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean(),
        f"{name}_t2i": -(targets * F.log_softmax(logits.t(), dim=1)).sum(dim=1).mean(),
    }


def category_cross_entropy(
    classify: Callable[[torch.Tensor], torch.Tensor],
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    categories: torch.Tensor,
    name: str,
) -> dict[str, torch.Tensor]:
    """Cross-entropy of one classifier on both modalities' embeddings: `{name}_image`, `{name}_text`."""
    return {
        f"{name}_image": F.cross_entropy(classify(image_embeddings), categories),
        f"{name}_text": F.cross_entropy(classify(text_embeddings), categories),
    }


class CrossModalLoss(nn.Module):
    # True for losses that need each item's category class (passed as `categories`).
    needs_categories = False

    def forward(
        self,
        image_embeddings: torch.Tensor,
        text_embeddings: torch.Tensor,
        labels: torch.Tensor,
        categories: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        # Only the category-aware losses take the category classes as a fourth argument.
        extra = (categories,) if self.needs_categories else ()
        return self.compute_loss_from_embeddings(image_embeddings, text_embeddings, labels, *extra)

    def compute_loss_from_embeddings(
        self, image_embeddings: torch.Tensor, text_embeddings: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class CMPMLoss(CrossModalLoss):
    """Cross-Modal Projection Matching (Zhang & Lu, ECCV 2018).

    p_ij = softmax_j(x_i . z_j/|z_j|); q_ij = y_ij / sum_k y_ik; loss = mean_i KL(p_i || q_i), i2t and t2i.
    """

    def __init__(self, epsilon: float = 1e-8):
        super().__init__()
        self.epsilon = epsilon

    def _one_direction(
        self, queries: torch.Tensor, gallery: torch.Tensor, matches: torch.Tensor
    ) -> torch.Tensor:
        projections = queries @ F.normalize(gallery, dim=-1).t()  # (batch, batch)
        p = projections.softmax(dim=1)
        q = matches / matches.sum(dim=1, keepdim=True)
        kl = p * (F.log_softmax(projections, dim=1) - torch.log(q + self.epsilon))  # (batch, batch)
        return kl.sum(dim=1).mean()

    def compute_loss_from_embeddings(self, image_embeddings, text_embeddings, labels):
        matches = match_matrix(labels)
        return {
            "cmpm_i2t": self._one_direction(image_embeddings, text_embeddings, matches),
            "cmpm_t2i": self._one_direction(text_embeddings, image_embeddings, matches),
        }


class CMPCLoss(CrossModalLoss):
    """Cross-Modal Projection Classification: norm-softmax over identity classes of each modality's
    features projected onto the other modality's normalised feature, x_hat_i = (x_i . z_i/|z_i|) z_i/|z_i|."""

    def __init__(self, num_classes: int, embed_dim: int):
        super().__init__()
        # No bias and L2-normalised class weights: the class score is |x_hat| cos(angle).
        self.class_weights = nn.Parameter(torch.randn(num_classes, embed_dim) * 0.02)

    def _projected_logits(self, features: torch.Tensor, onto: torch.Tensor) -> torch.Tensor:
        direction = F.normalize(onto, dim=-1)  # (batch, dim)
        projected = (features * direction).sum(dim=-1, keepdim=True) * direction  # (batch, dim)
        return projected @ F.normalize(self.class_weights, dim=-1).t()  # (batch, num_classes)

    def compute_loss_from_embeddings(self, image_embeddings, text_embeddings, labels):
        return {
            "cmpc_image": F.cross_entropy(self._projected_logits(image_embeddings, text_embeddings), labels),
            "cmpc_text": F.cross_entropy(self._projected_logits(text_embeddings, image_embeddings), labels),
        }


class HardestTripletLoss(CrossModalLoss):
    """VSE++ (Faghri et al. 2018): bidirectional hinge on cosine similarity with the hardest in-batch
    negative; items of the same identity are not negatives."""

    def __init__(self, margin: float = 0.2):
        super().__init__()
        self.margin = margin

    def compute_loss_from_embeddings(self, image_embeddings, text_embeddings, labels):
        similarity = (
            F.normalize(image_embeddings, dim=-1) @ F.normalize(text_embeddings, dim=-1).t()
        )  # (i, t)
        positive = similarity.diag()
        negatives = similarity.masked_fill(match_matrix(labels).bool(), float("-inf"))
        hardest_text = negatives.max(dim=1).values  # per image
        hardest_image = negatives.max(dim=0).values  # per text
        # A batch of one identity has no negative: -inf hinges to 0.
        return {
            "triplet_i2t": (self.margin - positive + hardest_text).clamp(min=0).mean(),
            "triplet_t2i": (self.margin - positive + hardest_image).clamp(min=0).mean(),
        }


class ContrastivePairLoss(CrossModalLoss):
    """Siamese contrastive loss (Hadsell et al. 2006) over all image-text pairs of the batch on normalised
    embeddings: matches pulled to distance 0, non-matches pushed beyond the margin. Positive and negative
    pairs are averaged separately so the many negatives do not drown the few positives."""

    def __init__(self, margin: float = 1.0):
        super().__init__()
        self.margin = margin

    def compute_loss_from_embeddings(self, image_embeddings, text_embeddings, labels):
        distance = torch.cdist(F.normalize(image_embeddings, dim=-1), F.normalize(text_embeddings, dim=-1))
        matches = match_matrix(labels)
        positive = (matches * distance.pow(2)).sum() / matches.sum()
        non_matches = 1 - matches
        negative = (
            non_matches * (self.margin - distance).clamp(min=0).pow(2)
        ).sum() / non_matches.sum().clamp(min=1)
        return {"contrastive_positive": positive, "contrastive_negative": negative}


class OrderEmbeddingLoss(CrossModalLoss):
    """Order embeddings (Vendrov et al. 2016): a photo is more specific than its title, so in the reversed
    product order on the non-negative orthant the title should lie "above" the photo:
    E(image, text) = |max(0, text - image)|^2 is 0 when text <= image coordinate-wise. Hinge with margin
    over all in-batch contrastive pairs, both directions. (Retrieval in this project ranks by cosine.)"""

    def __init__(self, margin: float = 0.05):
        super().__init__()
        self.margin = margin

    @staticmethod
    def violation(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
        images = F.normalize(image_embeddings, dim=-1).abs().unsqueeze(1)  # (i, 1, dim)
        texts = F.normalize(text_embeddings, dim=-1).abs().unsqueeze(0)  # (1, t, dim)
        return (texts - images).clamp(min=0).pow(2).sum(dim=-1)  # (i, t)

    def compute_loss_from_embeddings(self, image_embeddings, text_embeddings, labels):
        violation = self.violation(image_embeddings, text_embeddings)
        positive = violation.diag()
        non_matches = 1 - match_matrix(labels)
        count = non_matches.sum().clamp(min=1)
        i2t = ((self.margin + positive.unsqueeze(1) - violation).clamp(min=0) * non_matches).sum() / count
        t2i = ((self.margin + positive.unsqueeze(0) - violation).clamp(min=0) * non_matches).sum() / count
        return {"order_violation": positive.mean(), "order_i2t": i2t, "order_t2i": t2i}


class CorrelationalLoss(CrossModalLoss):
    """Correlational neural network (Chandar et al. 2016) adapted to the joint space: the two embeddings
    play the role of CorrNet's hidden views. Reconstruction: each view's (normalised) embedding is
    reconstructed from itself and from the other view through linear decoders; correlation: minus the
    sum over dimensions of the batch correlation between the views, weighted by lambda."""

    def __init__(self, embed_dim: int, correlation_weight: float = 0.1):
        super().__init__()
        self.decode_image = nn.Linear(embed_dim, embed_dim)
        self.decode_text = nn.Linear(embed_dim, embed_dim)
        self.correlation_weight = correlation_weight

    @staticmethod
    def correlation(first: torch.Tensor, second: torch.Tensor, epsilon: float = 1e-6) -> torch.Tensor:
        first = first - first.mean(dim=0)
        second = second - second.mean(dim=0)
        covariance = (first * second).sum(dim=0)  # (dim,)
        scale = torch.sqrt(first.pow(2).sum(dim=0) * second.pow(2).sum(dim=0) + epsilon)
        return (covariance / scale).sum()

    def compute_loss_from_embeddings(self, image_embeddings, text_embeddings, labels):
        images = F.normalize(image_embeddings, dim=-1)
        texts = F.normalize(text_embeddings, dim=-1)
        reconstruction = sum(
            F.mse_loss(decoder(source), target, reduction="sum") / len(source)
            for decoder, target in ((self.decode_image, images), (self.decode_text, texts))
            for source in (images, texts)
        )
        return {
            "corrnet_reconstruction": reconstruction,
            "corrnet_correlation": -self.correlation_weight * self.correlation(images, texts),
        }


class SymmetricInfoNCELoss(CrossModalLoss):
    """CLIP's symmetric InfoNCE with a learnable temperature; same-identity items share the target mass."""

    def __init__(self, initial_temperature: float = 0.07):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / initial_temperature)))

    def compute_loss_from_embeddings(self, image_embeddings, text_embeddings, labels):
        return infonce_with_matches(
            image_embeddings, text_embeddings, match_matrix(labels), self.logit_scale, "infonce"
        )


class CategoryClassificationLoss(CrossModalLoss):
    """Auxiliary term: both modalities' embeddings are classified into the product's category (article_type)
    by one shared cosine classifier with a fixed scale (NormFace). The instance losses push a navy shirt away
    from another navy shirt as hard as from a navy shoe; this term keeps each category in one region of the
    joint space, so a query's top 10 stays within its category."""

    needs_categories = True

    def __init__(self, num_categories: int, embed_dim: int, scale: float = 16.0):
        super().__init__()
        if num_categories < 1:
            raise ValueError("the category loss needs category classes (the training items' article_type)")
        self.class_weights = nn.Parameter(torch.randn(num_categories, embed_dim) * 0.02)
        self.scale = scale

    def _logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        return cosine_logits(embeddings, self.class_weights, self.scale)  # (batch, num_categories)

    def compute_loss_from_embeddings(self, image_embeddings, text_embeddings, labels, categories=None):
        if categories is None:
            raise ValueError("the category loss needs each item's category class (categories=...)")
        return category_cross_entropy(self._logits, image_embeddings, text_embeddings, categories, "category")


class CategoryContrastiveLoss(CrossModalLoss):
    """Auxiliary term: symmetric InfoNCE whose positives are all in-batch items of the query's category
    (supervised contrastive across the two modalities), with its own learnable temperature. It asks the
    ranking itself to put a title's category above other categories, where `category` only asks each
    embedding to be classifiable."""

    needs_categories = True

    def __init__(self, initial_temperature: float = 0.1):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / initial_temperature)))

    def compute_loss_from_embeddings(self, image_embeddings, text_embeddings, labels, categories=None):
        if categories is None:
            raise ValueError("the category_nce loss needs each item's category class (categories=...)")
        return infonce_with_matches(
            image_embeddings, text_embeddings, match_matrix(categories), self.logit_scale, "category_nce"
        )


# Each factory takes (identity classes, embedding size, category classes).
LOSSES = {
    "cmpm": lambda num_classes, embed_dim, num_categories: CMPMLoss(),
    "cmpc": lambda num_classes, embed_dim, num_categories: CMPCLoss(num_classes, embed_dim),
    "triplet": lambda num_classes, embed_dim, num_categories: HardestTripletLoss(),
    "contrastive": lambda num_classes, embed_dim, num_categories: ContrastivePairLoss(),
    "order": lambda num_classes, embed_dim, num_categories: OrderEmbeddingLoss(),
    "corrnet": lambda num_classes, embed_dim, num_categories: CorrelationalLoss(embed_dim),
    "infonce": lambda num_classes, embed_dim, num_categories: SymmetricInfoNCELoss(),
    "category": lambda num_classes, embed_dim, num_categories: CategoryClassificationLoss(
        num_categories, embed_dim
    ),
    "category_nce": lambda num_classes, embed_dim, num_categories: CategoryContrastiveLoss(),
}


class CombinedLoss(CrossModalLoss):
    """Several registered losses at once ("cmpm+cmpc+0.5*category"); their named terms are merged, each
    multiplied by its part's weight."""

    needs_categories = True

    def __init__(self, parts: dict[str, CrossModalLoss], weights: dict[str, float] | None = None):
        super().__init__()
        self.parts = nn.ModuleDict(parts)
        self.weights = {name: 1.0 for name in parts} | (weights or {})

    def compute_loss_from_embeddings(self, image_embeddings, text_embeddings, labels, categories=None):
        terms: dict[str, torch.Tensor] = {}
        for name, part in self.parts.items():
            part_terms = part(image_embeddings, text_embeddings, labels, categories)
            weight = self.weights[name]
            terms.update({term: value * weight for term, value in part_terms.items()})
        return terms


def parse_loss_spec(spec: str) -> dict[str, float]:
    """ "cmpm+cmpc+0.5*category" -> {"cmpm": 1.0, "cmpc": 1.0, "category": 0.5}."""
    usage = f"combine names from {sorted(LOSSES)} with '+', each optionally weighted as 0.5*name"
    weights: dict[str, float] = {}
    for part in (piece.strip() for piece in spec.split("+")):
        if not part:
            continue
        weight_text, _, name = part.rpartition("*")
        name = name.strip()
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            raise ValueError(f"bad weight {weight_text!r} in loss {spec!r}; {usage}") from None
        if name not in LOSSES or weight <= 0:
            raise ValueError(f"unknown loss {spec!r}; {usage}")
        weights[name] = weight
    if not weights:
        raise ValueError(f"unknown loss {spec!r}; {usage}")
    return weights


def build_loss(spec: str, num_classes: int, embed_dim: int, num_categories: int = 0) -> CombinedLoss:
    weights = parse_loss_spec(spec)
    parts = {name: LOSSES[name](num_classes, embed_dim, num_categories) for name in weights}
    return CombinedLoss(parts, weights)
