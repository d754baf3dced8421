import torch
from torch import nn

from mlcore.text_tower import BiLSTMTextTower, TitleTokenizer, minilm_folder


def tiny_bilstm(seed=0):
    torch.manual_seed(seed)
    return BiLSTMTextTower(embed_dim=8, vocab_size=50, word_dim=6, hidden_size=5, pretrained=False).eval()


def lstm_states(tower, token_ids):
    """(batch, length, 2 * hidden) LSTM outputs for unpadded sequences, straight from nn.LSTM."""
    return tower.lstm(tower.word_embeddings(token_ids))[0]


def test_bilstm_output_depends_on_a_change_at_either_end():
    tower = tiny_bilstm()
    base = torch.tensor([[3, 7, 9, 11, 4]])
    mask = torch.ones_like(base)
    first_changed, last_changed = base.clone(), base.clone()
    first_changed[0, 0], last_changed[0, -1] = 20, 20
    with torch.no_grad():
        states = [lstm_states(tower, ids) for ids in (base, first_changed, last_changed)]
        hidden = tower.lstm.hidden_size
        # The backward half at the FIRST position has read the whole title from the end, so it sees a change
        # of the last token; the forward half at the first position cannot.
        assert not torch.allclose(states[0][0, 0, hidden:], states[2][0, 0, hidden:])
        assert torch.allclose(states[0][0, 0, :hidden], states[2][0, 0, :hidden])
        # Symmetrically the forward half at the LAST position sees a change of the first token.
        assert not torch.allclose(states[0][0, -1, :hidden], states[1][0, -1, :hidden])
        assert torch.allclose(states[0][0, -1, hidden:], states[1][0, -1, hidden:])
        pooled = [tower(ids, mask) for ids in (base, first_changed, last_changed)]
    assert not torch.allclose(pooled[0], pooled[1]) and not torch.allclose(pooled[0], pooled[2])


def test_bilstm_backward_direction_reads_right_to_left_like_a_reversed_forward_lstm():
    tower = tiny_bilstm()
    lstm = tower.lstm
    reverse = nn.LSTM(lstm.input_size, lstm.hidden_size, batch_first=True)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(reverse, f"{name}_l0").data.copy_(getattr(lstm, f"{name}_l0_reverse").data)
    ids = torch.tensor([[3, 7, 9, 11, 4]])
    with torch.no_grad():
        words = tower.word_embeddings(ids)
        expected = reverse(words.flip(1))[0].flip(1)  # (1, length, hidden)
        got = lstm_states(tower, ids)[..., lstm.hidden_size :]
    assert torch.allclose(got, expected, atol=1e-6)


def test_bilstm_padding_does_not_change_a_titles_embedding():
    # Packing starts the backward pass at each title's own last token, not at the padding.
    tower = tiny_bilstm()
    short = torch.tensor([[3, 7, 9]])
    padded = torch.tensor([[3, 7, 9, 0, 0, 0], [5, 6, 7, 8, 9, 10]])
    padded_mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        alone = tower(short, torch.ones_like(short))
        in_batch = tower(padded, padded_mask)[:1]
    assert torch.allclose(alone, in_batch, atol=1e-6)


def test_tokenizer_lowercases_pads_and_truncates():
    tokenizer = TitleTokenizer(minilm_folder() / "tokenizer.json", max_length=6)
    batch = tokenizer(["Navy Blue Shirt", "navy blue shirt with a very long and wordy name"])
    assert torch.equal(batch.token_ids[0, :4], batch.token_ids[1, :4])  # [CLS] navy blue shirt
    assert batch.token_ids.shape == (2, 6)
    assert batch.token_ids[1, -1] == batch.token_ids[0, 4]  # truncation keeps the closing [SEP]
    assert batch.attention_mask[0].tolist() == [1, 1, 1, 1, 1, 0]


def test_bert_branch_loads_and_pools_minilm_as_sentence_transformers_does():
    """docs/integration.md says why transformers loads MiniLM here: the result must be the sentence
    embedding sentence-transformers computes for the same model (its Transformer + mean Pooling)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    from mlcore.text_tower import BertTextTower

    titles = ["Navy slim fit check shirt", "Women Black Skinny Jeans with a longer title than the first"]
    folder = str(minilm_folder())
    reference = SentenceTransformer(
        modules=[Transformer(folder), Pooling(384, pooling_mode="mean")], device="cpu"
    )
    expected = reference.encode(titles, convert_to_tensor=True)  # (2, 384)
    tower = BertTextTower(embed_dim=8, pretrained=True).eval()
    tokens = TitleTokenizer(minilm_folder() / "tokenizer.json", max_length=64)(titles)

    with torch.inference_mode():
        pooled = tower.pooled_features(tokens.token_ids, tokens.attention_mask)  # (2, 384)

    assert torch.allclose(pooled, expected, atol=1e-5)
