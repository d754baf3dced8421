"""Each loss against values computed independently with NumPy on small tensors."""

import math

import numpy as np
import pytest
import torch

from mlcore_train.losses import (
    LOSSES,
    CategoryClassificationLoss,
    CategoryContrastiveLoss,
    CMPCLoss,
    CMPMLoss,
    ContrastivePairLoss,
    CorrelationalLoss,
    HardestTripletLoss,
    OrderEmbeddingLoss,
    SymmetricInfoNCELoss,
    build_loss,
)

IMAGES = np.array([[1.0, 0.0, 0.5], [0.2, 1.0, 0.0], [0.0, 0.3, 1.0], [0.9, 0.1, 0.4]])
TEXTS = np.array([[0.8, 0.1, 0.3], [0.0, 1.2, 0.1], [0.1, 0.0, 0.9], [1.0, 0.2, 0.6]])
LABELS = np.array([0, 1, 2, 0])  # items 0 and 3 are the same product (same title)


def tensors():
    return (
        torch.tensor(IMAGES, dtype=torch.float64),
        torch.tensor(TEXTS, dtype=torch.float64),
        torch.tensor(LABELS),
    )


def unit(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def matches():
    return (LABELS[:, None] == LABELS[None, :]).astype(float)


def softmax(rows):
    exp = np.exp(rows - rows.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def test_cmpm_matches_numpy():
    epsilon = 1e-8

    def direction(x, z):
        p = softmax(x @ unit(z).T)
        q = matches() / matches().sum(axis=1, keepdims=True)
        return np.mean(np.sum(p * (np.log(p) - np.log(q + epsilon)), axis=1))

    terms = CMPMLoss(epsilon)(*tensors())
    assert terms["cmpm_i2t"].item() == pytest.approx(direction(IMAGES, TEXTS))
    assert terms["cmpm_t2i"].item() == pytest.approx(direction(TEXTS, IMAGES))


def test_cmpm_treats_duplicate_products_as_matches():
    # Given a batch where items 0 and 3 are the same product, their cross pairs must not be pushed apart:
    # a text that puts all its mass on either copy has zero loss only when q spreads over both.
    terms = CMPMLoss()(*tensors())
    q_row = matches()[0] / matches()[0].sum()
    assert q_row[3] == 0.5 and terms["cmpm_i2t"].item() > 0


def test_cmpc_matches_numpy():
    loss = CMPCLoss(num_classes=3, embed_dim=3).double()
    weights = np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.3], [0.1, 0.0, 1.0]]) * 3.0
    loss.class_weights.data = torch.tensor(weights)

    def direction(x, z):
        z_bar = unit(z)
        projected = np.sum(x * z_bar, axis=1, keepdims=True) * z_bar
        logits = projected @ unit(weights).T
        return -np.mean(np.log(softmax(logits)[np.arange(len(LABELS)), LABELS]))

    terms = loss(*tensors())
    assert terms["cmpc_image"].item() == pytest.approx(direction(IMAGES, TEXTS))
    assert terms["cmpc_text"].item() == pytest.approx(direction(TEXTS, IMAGES))


def test_hardest_triplet_matches_numpy():
    similarity = unit(IMAGES) @ unit(TEXTS).T
    negatives = np.where(matches() > 0, -np.inf, similarity)
    positive = np.diag(similarity)
    expected_i2t = np.mean(np.maximum(0, 0.2 - positive + negatives.max(axis=1)))
    expected_t2i = np.mean(np.maximum(0, 0.2 - positive + negatives.max(axis=0)))
    terms = HardestTripletLoss(margin=0.2)(*tensors())
    assert terms["triplet_i2t"].item() == pytest.approx(expected_i2t)
    assert terms["triplet_t2i"].item() == pytest.approx(expected_t2i)


def test_contrastive_matches_numpy():
    a, b = unit(IMAGES), unit(TEXTS)
    distance = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    m = matches()
    positive = (m * distance**2).sum() / m.sum()
    negative = ((1 - m) * np.maximum(0, 1.0 - distance) ** 2).sum() / (1 - m).sum()
    terms = ContrastivePairLoss(margin=1.0)(*tensors())
    assert terms["contrastive_positive"].item() == pytest.approx(positive, abs=1e-6)
    assert terms["contrastive_negative"].item() == pytest.approx(negative, abs=1e-6)


def test_order_embedding_matches_numpy():
    images, texts = np.abs(unit(IMAGES)), np.abs(unit(TEXTS))
    violation = np.array([[np.sum(np.maximum(0, t - i) ** 2) for t in texts] for i in images])
    positive = np.diag(violation)
    non_matches = 1 - matches()
    i2t = (np.maximum(0, 0.05 + positive[:, None] - violation) * non_matches).sum() / non_matches.sum()
    t2i = (np.maximum(0, 0.05 + positive[None, :] - violation) * non_matches).sum() / non_matches.sum()
    terms = OrderEmbeddingLoss(margin=0.05)(*tensors())
    assert terms["order_violation"].item() == pytest.approx(positive.mean())
    assert terms["order_i2t"].item() == pytest.approx(i2t)
    assert terms["order_t2i"].item() == pytest.approx(t2i)


def test_correlational_matches_numpy():
    loss = CorrelationalLoss(embed_dim=3, correlation_weight=0.1).double()
    for decoder in (loss.decode_image, loss.decode_text):
        decoder.weight.data = torch.eye(3, dtype=torch.float64) * 0.5
        decoder.bias.data.zero_()
    images, texts = unit(IMAGES), unit(TEXTS)
    n = len(images)
    reconstruction = sum(
        ((0.5 * source - target) ** 2).sum() / n for target in (images, texts) for source in (images, texts)
    )
    ci, ct = images - images.mean(0), texts - texts.mean(0)
    correlation = np.sum((ci * ct).sum(0) / np.sqrt((ci**2).sum(0) * (ct**2).sum(0) + 1e-6))
    terms = loss(*tensors())
    assert terms["corrnet_reconstruction"].item() == pytest.approx(reconstruction)
    assert terms["corrnet_correlation"].item() == pytest.approx(-0.1 * correlation)


def test_symmetric_infonce_matches_numpy():
    logits = (1 / 0.07) * unit(IMAGES) @ unit(TEXTS).T
    targets = matches() / matches().sum(axis=1, keepdims=True)
    i2t = -np.mean(np.sum(targets * np.log(softmax(logits)), axis=1))
    t2i = -np.mean(np.sum(targets * np.log(softmax(logits.T)), axis=1))
    terms = SymmetricInfoNCELoss(0.07).double()(*tensors())
    assert terms["infonce_i2t"].item() == pytest.approx(i2t)
    assert terms["infonce_t2i"].item() == pytest.approx(t2i)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_registered_loss_gives_finite_terms_with_gradients(name):
    images = torch.randn(6, 3, requires_grad=True)
    texts = torch.randn(6, 3, requires_grad=True)
    loss = build_loss(name, num_classes=5, embed_dim=3, num_categories=2)
    terms = loss(images, texts, torch.tensor([0, 1, 2, 3, 4, 0]), torch.tensor([0, 1, 1, 0, 1, 0]))
    total = sum(terms.values())
    total.backward()
    assert math.isfinite(total.item()) and images.grad is not None and images.grad.abs().sum() > 0


def test_combined_loss_merges_named_terms_and_rejects_unknown_names():
    terms = build_loss("cmpm+cmpc", num_classes=3, embed_dim=3)(
        *[t.float() for t in tensors()[:2]], tensors()[2]
    )
    assert set(terms) == {"cmpm_i2t", "cmpm_t2i", "cmpc_image", "cmpc_text"}
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss("cmpm+nope", num_classes=3, embed_dim=3)


def test_category_loss_matches_numpy():
    categories = np.array([0, 1, 1, 0])  # e.g. shirts and shoes
    loss = CategoryClassificationLoss(num_categories=2, embed_dim=3, scale=16.0).double()
    weights = loss.class_weights.detach().numpy()

    def cross_entropy(embeddings):
        logits = 16.0 * unit(embeddings) @ unit(weights).T
        return -np.mean(np.log(softmax(logits)[np.arange(4), categories]))

    terms = loss(*tensors(), torch.tensor(categories))
    assert terms["category_image"].item() == pytest.approx(cross_entropy(IMAGES))
    assert terms["category_text"].item() == pytest.approx(cross_entropy(TEXTS))
    with pytest.raises(ValueError, match="category class"):
        loss(*tensors())


def test_loss_spec_weights_scale_each_part_terms():
    images, texts, labels = tensors()
    categories = torch.tensor([0, 1, 1, 0])
    torch.manual_seed(0)
    plain = build_loss("cmpm+category", num_classes=3, embed_dim=3, num_categories=2).double()
    torch.manual_seed(0)
    weighted = build_loss("cmpm+0.25*category", num_classes=3, embed_dim=3, num_categories=2).double()
    plain_terms = plain(images, texts, labels, categories)
    weighted_terms = weighted(images, texts, labels, categories)
    assert weighted_terms["cmpm_i2t"].item() == pytest.approx(plain_terms["cmpm_i2t"].item())
    assert weighted_terms["category_text"].item() == pytest.approx(0.25 * plain_terms["category_text"].item())
    for bad in ("cmpm+x*category", "cmpm+-1*category", "", "cmpm+0*cmpc"):
        with pytest.raises(ValueError):
            build_loss(bad, num_classes=3, embed_dim=3, num_categories=2)


def test_category_contrastive_matches_numpy():
    categories = np.array([0, 1, 1, 0])
    logits = (1 / 0.1) * unit(IMAGES) @ unit(TEXTS).T
    same = (categories[:, None] == categories[None, :]).astype(float)
    targets = same / same.sum(axis=1, keepdims=True)
    i2t = -np.mean(np.sum(targets * np.log(softmax(logits)), axis=1))
    t2i = -np.mean(np.sum(targets * np.log(softmax(logits.T)), axis=1))
    terms = CategoryContrastiveLoss(0.1).double()(*tensors(), torch.tensor(categories))
    assert terms["category_nce_i2t"].item() == pytest.approx(i2t)
    assert terms["category_nce_t2i"].item() == pytest.approx(t2i)
