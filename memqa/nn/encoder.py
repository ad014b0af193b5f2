"""StoryEncoder: the one embedding layer every reader uses.

A sentence x_i = (x_i1 .. x_iJ) becomes m_i = sum_j l_j * A x_ij + T_A(i)
(Sukhbaatar et al. 2015 §4.1): word embedding A, position encoding l_j (or all-ones
for bag of words), and a learned temporal row T_A(i) indexed by the sentence's age.
The position weights are the paper's l_kj times EncoderConfig.position_scale (2 by default,
the scale of the authors' released code; 1 gives the paper's formula exactly).

Two ways to compute the same m_i: StoryEncoder.forward / encode_words look up each word's embedding and
weigh it (one encoder; MemNN also weighs per-word features with the same weights), and encode_many writes
the sentences as weighted sums of one-hot vectors, as the paper does, and encodes them with several
encoders in one matrix product (MemN2N's K + 1 matrices over the same story): fewer, larger tensor ops
per training step. Tests hold the two to the same numbers and gradients.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from memqa.config import EncoderConfig
from memqa.data.vocab import PAD_ID


def position_encoding(lengths: Tensor, width: int, dim: int) -> Tensor:
    """The weights l_kj = (1 - j/J) - (k/d)(1 - 2j/J) of Sukhbaatar et al. 2015 §4.1.

    lengths: (...) words J in each sentence (its own length, not the padded width).
    Returns (..., W, D): row j-1, column k-1 holds l_kj for word j, embedding component k.
    Entries past a sentence's length are meaningless; those words embed to zero (PAD).
    """
    j = torch.arange(1, width + 1, dtype=torch.float32, device=lengths.device)[:, None]  # (W, 1)
    k = torch.arange(1, dim + 1, dtype=torch.float32, device=lengths.device)  # (D,)
    J = lengths.clamp(min=1).to(torch.float32)[..., None, None]  # (..., 1, 1)
    return (1 - j / J) - (k / dim) * (1 - 2 * j / J)  # (..., W, D)


def slot_ages(memory_mask: Tensor) -> Tensor:
    """Temporal index of each slot: 0 for the most recent sentence (§4.1 indexes in reverse).

    memory_mask: (B, S), sentences left-aligned oldest first. Returns (B, S) long; padding gets 0."""
    lengths = memory_mask.sum(dim=1, keepdim=True)  # (B, 1)
    slots = torch.arange(memory_mask.shape[1], device=memory_mask.device)  # (S,)
    return (lengths - 1 - slots).clamp(min=0) * memory_mask  # (B, S)


def noisy_slot_ages(memory_mask: Tensor, noise: float, max_age: int) -> Tensor:
    """Random noise (RN, §4.1): "randomly add 10% of empty memories to the stories".

    As in the authors' code (MemN2N-babi-matlab train.m: nblank = randi([0, ceil(n * noise)])): a story
    of n sentences gets nblank ~ U{0..ceil(noise*n)} empty time slots, and its sentences take a sorted
    random n of the n + nblank ages (clipped to max_age). memory_mask: (B, S). Returns (B, S) long."""
    B, S = memory_mask.shape
    extra = math.ceil(noise * S)
    if extra == 0:
        return slot_ages(memory_mask)
    lengths = memory_mask.sum(dim=1)  # (B,)
    limit = torch.ceil(noise * lengths.float()) + 1  # (B,) choices of nblank
    blanks = (torch.rand(B, device=memory_mask.device) * limit).long()  # (B,) in 0..ceil(noise*n)
    positions = torch.arange(S + extra, device=memory_mask.device)  # (S+E,)
    keys = torch.rand(B, S + extra, device=memory_mask.device)  # (B, S+E)
    keys = keys.masked_fill(positions >= (lengths + blanks)[:, None], math.inf)
    chosen = keys.topk(S, dim=1, largest=False).indices  # (B, S): a row's first n are its random n of n + nblank ages
    # Oldest sentence first, so the largest age first; padding (-1) sorts last and becomes 0.
    ages = chosen.masked_fill(~memory_mask, -1).sort(dim=1, descending=True).values  # (B, S)
    return ages.clamp(min=0, max=max_age)  # (B, S)


def known_ids(word_ids: Tensor, num_words: int) -> Tensor:
    """word_ids with every id past the vocabulary (an unseen word) replaced by PAD."""
    return word_ids.masked_fill(word_ids >= num_words, PAD_ID)


class ContextFeatures(nn.Module):
    """A word represented by its neighbours: the Memory Networks paper's "previously unseen words"
    (Weston, Chopra, Bordes 2014): one bag of words for the left context and one for the right
    (D grows from 3|W| to 5|W|), used for words never seen in training and, in training, for a share
    of the known words whose own embedding is dropped, so that the reader learns to use them.
    Here the bags hold the word just before and the word just after (padding and unseen neighbours
    add nothing), weighted by the word's own position weights."""

    def __init__(self, config: EncoderConfig, num_words: int):
        super().__init__()
        self.num_words = num_words
        self.left = nn.Embedding(num_words, config.embedding_dim, padding_idx=PAD_ID)
        self.right = nn.Embedding(num_words, config.embedding_dim, padding_idx=PAD_ID)
        for table in (self.left, self.right):
            nn.init.normal_(table.weight, std=config.init_std)
            with torch.no_grad():
                table.weight[PAD_ID].zero_()

    def forward(self, word_ids: Tensor, unseen: Tensor, weights: Tensor | None = None) -> Tensor:
        """word_ids, unseen: (..., W), unseen True where a word is represented by its context;
        weights: (..., W, D) position weights or None -> (..., D)."""
        ids = known_ids(word_ids, self.num_words)  # (..., W)
        before = torch.nn.functional.pad(ids, (1, 0), value=PAD_ID)[..., :-1]  # (..., W): the word to the left
        after = torch.nn.functional.pad(ids, (0, 1), value=PAD_ID)[..., 1:]  # (..., W): the word to the right
        context = self.left(before.masked_fill(~unseen, PAD_ID)) + self.right(after.masked_fill(~unseen, PAD_ID))
        if weights is not None:
            context = context * weights  # (..., W, D)
        return context.sum(dim=-2)  # (..., D)


class StoryEncoder(nn.Module):
    """One embedding matrix with its sentence encoding and temporal table (built from EncoderConfig).

    Readers hold one instance per embedding matrix of their paper (A^k, C^k, B ...)."""

    def __init__(self, config: EncoderConfig, num_words: int):
        super().__init__()
        self.config = config
        self.word_embedding = nn.Embedding(num_words, config.embedding_dim, padding_idx=PAD_ID)
        self.temporal_embedding = (nn.Parameter(torch.empty(config.memory_size, config.embedding_dim))
                                   if config.temporal else None)
        self._position_tables: dict[tuple, Tensor] = {}  # constant weight tables, by (width or copies, device, kind)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.word_embedding.weight, std=self.config.init_std)
        with torch.no_grad():
            self.word_embedding.weight[PAD_ID].zero_()  # the null symbol embeds to zero (§4.1)
        if self.temporal_embedding is not None:
            nn.init.normal_(self.temporal_embedding, std=self.config.init_std)

    def word_weights(self, word_ids: Tensor) -> Tensor | None:
        """The position-encoding weights for word_ids (..., W): (..., W, D), or None for bag of words.
        They depend only on the ids' lengths, so a reader with several encoders computes them once."""
        if self.config.encoding != "position":
            return None
        lengths = (word_ids != PAD_ID).sum(dim=-1)  # (...)
        return self._position_table(word_ids.shape[-1], word_ids.device)[lengths]  # (..., W, D)

    def _position_table(self, width: int, device: torch.device) -> Tensor:
        """(W+1, W, D): row J holds the scaled weights of a J-word sentence (a constant, made once per width)."""
        key = (width, str(device))
        if key not in self._position_tables:
            weights = position_encoding(torch.arange(width + 1, device=device), width, self.config.embedding_dim)
            scale = self.config.position_scale
            self._position_tables[key] = weights * scale if scale != 1 else weights  # (W+1, W, D)
        return self._position_tables[key]

    def bag_table(self, width: int, device: torch.device) -> Tensor:
        """(W+1, P, W): row J holds the coefficient of each word's one-hot vector in a J-word sentence, zero past
        its end. Position encoding (P = 2): l_kj = f_j + (k/d) g_j with f_j = 1 - j/J and g_j = 2j/J - 1 (the
        paper's l_kj regrouped), both times position_scale. Bag of words (P = 1): 1 for every word."""
        key = (width, str(device), "bags")
        if key not in self._position_tables:
            j = torch.arange(1, width + 1, dtype=torch.float32, device=device)  # (W,)
            J = torch.arange(width + 1, dtype=torch.float32, device=device)[:, None]  # (W+1, 1)
            inside = (j <= J).to(torch.float32)  # (W+1, W)
            if self.config.encoding == "position":
                f, g = 1 - j / J.clamp(min=1), 2 * j / J.clamp(min=1) - 1  # (W+1, W) each
                table = torch.stack([f, g], dim=1) * (inside * self.config.position_scale)[:, None]  # (W+1, 2, W)
            else:
                table = inside[:, None]  # (W+1, 1, W)
            self._position_tables[key] = table
        return self._position_tables[key]

    def component_fractions(self, copies: int) -> Tensor:
        """(copies * D,): k/d for k = 1..d, repeated `copies` times (a constant, made once)."""
        key = (copies, str(self.word_embedding.weight.device), "k/d")
        if key not in self._position_tables:
            dim = self.config.embedding_dim
            k = torch.arange(1, dim + 1, dtype=torch.float32, device=self.word_embedding.weight.device) / dim
            self._position_tables[key] = k.repeat(copies)
        return self._position_tables[key]

    def encode_words(self, word_ids: Tensor, weights: Tensor | None = None) -> Tensor:
        """word_ids: (..., W) -> (..., D): the position-weighted (or plain) sum of word embeddings.
        weights: word_weights(word_ids) when already computed. Ids past the vocabulary (words never
        seen in training, kept by memqa.data.vocab's "keep" policy) count in the sentence's length
        and embed to zero."""
        embedded = self.word_embedding(known_ids(word_ids, self.word_embedding.num_embeddings))  # (..., W, D)
        if self.config.encoding == "position":
            embedded = embedded * (self.word_weights(word_ids) if weights is None else weights)  # (..., W, D)
        return embedded.sum(dim=-2)  # (..., D)

    def forward(self, story_ids: Tensor, ages: Tensor | None = None, weights: Tensor | None = None) -> Tensor:
        """story_ids: (B, S, W); ages: (B, S) temporal indices (slot_ages when None);
        weights: word_weights(story_ids) when already computed -> (B, S, D)."""
        memories = self.encode_words(story_ids, weights)  # (B, S, D)
        if self.temporal_embedding is not None:
            if ages is None:
                ages = slot_ages(story_ids.ne(PAD_ID).any(dim=-1))  # (B, S)
            memories = memories + self.temporal_embedding[ages.clamp(max=self.config.memory_size - 1)]  # (B, S, D)
        return memories


def encode_many(encoders: Sequence[StoryEncoder], word_ids: Tensor, ages: Tensor | None = None) -> Tensor:
    """Every encoder's encoding of the same sentences at once, as the paper writes it, over one-hot word
    vectors x_ij: m_i = Σ_j l_j ⊙ A x_ij + T_A(i) (§4.1). With l_kj = f_j + (k/d) g_j (bag_table), row i of F
    (G) is Σ_j f_j x_ij (Σ_j g_j x_ij) and O holds one-hot ages, so m = F A + O T_A + G ((k/d) ⊙ A): for all
    the encoders at once (their matrices side by side), one product [F | O | G] [A; T_A; (k/d) ⊙ A], whose
    backward is one more (no per-word gather). The same numbers as StoryEncoder.forward and encode_words,
    up to rounding.

    word_ids: (B, S, W) sentences or (B, W); ages: (B, S') temporal indices of the first S' <= S sentences
    (the rest, e.g. a question, get no temporal row), or None for none.
    Returns (B, S, n, D) or (B, n, D), n = len(encoders). Ids past the vocabulary embed to zero."""
    head = encoders[0]
    config, num_words = head.config, head.word_embedding.num_embeddings
    assert all(e.config == config and e.word_embedding.num_embeddings == num_words for e in encoders)
    temporal = ages is not None and config.temporal
    # Columns of a bag: F's words (V) [and ages (M)], then G's words (V), then one for ids past the vocabulary.
    width = num_words + (config.memory_size if temporal else 0)  # F's columns
    table = head.bag_table(word_ids.shape[-1], word_ids.device)  # (W+1, P, W)
    parts = table.shape[1]
    sink = width + num_words * (parts - 1)
    coefficients = table[(word_ids != PAD_ID).sum(dim=-1)]  # (..., P, W)
    offsets = torch.tensor([[0], [width]][:parts], device=word_ids.device)  # (P, 1): where F's and G's columns start
    columns = torch.where(word_ids[..., None, :] >= num_words, sink, word_ids[..., None, :] + offsets)  # (..., P, W)
    bags = torch.zeros(*word_ids.shape[:-1], sink + 1, device=word_ids.device)  # (..., F | G | sink)
    bags.scatter_add_(-1, columns.flatten(-2), coefficients.flatten(-2))
    weights = torch.cat([e.word_embedding.weight for e in encoders], dim=1)  # (V, nD): the encoders' A side by side
    rows = [weights]  # (rows of the bags' columns, nD)
    if temporal:
        ages = num_words + ages.clamp(max=config.memory_size - 1)  # (B, S'): the ages' columns
        bags[:, : ages.shape[1]].scatter_(-1, ages[..., None], 1.0)
        rows.append(torch.cat([e.temporal_embedding for e in encoders], dim=1))  # (M, nD)
    if parts == 2:
        rows.append(weights * head.component_fractions(len(encoders)))  # (V, nD): (k/d) ⊙ A
    encoded = bags[..., :-1].reshape(-1, sink) @ torch.cat(rows)  # (N, nD)
    return encoded.view(*word_ids.shape[:-1], len(encoders), config.embedding_dim)
