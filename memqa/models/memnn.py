"""Memory Network (Weston, Chopra, Bordes 2014), trained on the annotated supporting facts.

  I  the shared StoryEncoder maps the question and each sentence to feature vectors (U Φ)
  G  each sentence is written to the next memory slot, with its write time (the slot's age)
  O  hop k picks o_k = argmax_i s_O([x, m_o1 .. m_ok-1], m_i),  s_O(x, y) = Φx(x)ᵀUᵀU Φy(y)
     compared in pairs with the write-time features (s_Ot, "Modeling write time"; memqa.nn.ranking)
  R  the answer label  argmax_w s_R([x, m_o1 .. m_oK], w)

Adaptive memory (AM, Weston et al. 2015 App. A): a learned stop memory m_∅ is a candidate at
every hop; a question with F annotated facts is taught to pick them in order, then m_∅, and hops
stop once m_∅ is picked (`hops` is the hard limit). The non-linear response (NL, same appendix)
is E(x) = tanh(W tanh(UΦx(x))) over the question and the facts found, one block per hop.

Training is teacher-forced as in the paper: each hop's query holds the annotated facts before it,
and R reads the annotated facts; with `response_on_picks` (ours) R also learns to answer from the
reader's own picks. At inference the reader uses its own picks and no annotation. The loss is the
margin ranking loss of eqs. 6-8 with every other memory (and every other answer) as a negative: no
sampling, one batched sum.

Words never seen in training (2014: "previously unseen words", "exact matches") keep their place and
identity (memqa.data.vocab's "keep" policy): the exact-match feature fires on them, and with
`unseen_words` > 0 they are represented by their left and right neighbours (ContextFeatures), which
training teaches by representing that share of the known words the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from memqa.config import MemNNConfig
from memqa.data.babi import Example
from memqa.data.batching import NO_ANSWER, NO_FACT, Batch
from memqa.data.vocab import PAD_ID, Vocab
from memqa.errors import DataError
from memqa.models.base import ReaderModel, ReaderOutput
from memqa.nn.encoder import ContextFeatures, StoryEncoder, slot_ages
from memqa.nn.ranking import compare_memories, margin_ranking_loss, pick_memory, write_order, written_after

MATCH_WORDS = 2  # the "exact match" feature's vocabulary: PAD, and "this word is also in the question"
NEWER_THAN_LAST, OLDER_THAN_OTHER = 0, 1  # rows of MemNN.time_features (the paper's Φt, made antisymmetric)


class Memory(NamedTuple):
    """The story written to memory, with the stop memory m_∅ as the last slot (index S)."""

    candidates: Tensor  # (B, S+1, D) UΦy(m_i): a memory as a candidate
    found: Tensor  # (B, S+1, D) UΦx(m_i): a memory once found, added to the next hops' query (m_∅: 0)
    real: Tensor  # (B, S+1) True for stored sentences (False for padding and m_∅)
    ages: Tensor  # (B, S+1) sentences written since (0 = latest)
    order: Tensor  # (B, S+1, S+1) write_order of every pair


def match_ids(story_ids: Tensor, question_ids: Tensor) -> Tensor:
    """1 for each story word that also occurs in the question, else PAD ("exact matches", 2014 paper).
    story_ids: (B, S, W); question_ids: (B, Wq). Returns (B, S, W) ids of the 2-word match vocabulary."""
    shared = (story_ids[..., None] == question_ids[:, None, None, :]).any(dim=-1)  # (B, S, W)
    return (shared & (story_ids != PAD_ID)).long()  # (B, S, W)


def picks_from_attention(attention: Tensor) -> Tensor:
    """The slots a hard-attention output picked: attention (B, K, S) one-hot rows, zero once stopped
    -> (B, K) slot ids, S (= m_∅) for the hops after the reader stopped."""
    S = attention.shape[2]
    return torch.where(attention.sum(dim=2) > 0, attention.argmax(dim=2), S)  # (B, K)


class Words(NamedTuple):
    """A batch's words as the encoders read them: unseen ones (never seen in training, or dropped in
    training) carry an id past the vocabulary, which embeds to zero, and are marked in `*_unseen`."""

    story: Tensor  # (B, S, W)
    question: Tensor  # (B, Wq)
    story_unseen: Tensor  # (B, S, W) bool
    question_unseen: Tensor  # (B, Wq) bool


class HopState(NamedTuple):
    """What O knows before a hop."""

    query: Tensor  # (B, D) UΦx([x, m_o1 .. m_ok-1])
    available: Tensor  # (B, S+1) memories that may still be found (m_∅ always)
    last: Tensor | None  # (B,) the memory found at the previous hop (None before the first)


def start_state(memory: Memory, question: Tensor) -> HopState:
    """Before hop 1: the query is the question (B, D); every sentence and m_∅ are available."""
    available = memory.real.clone()  # (B, S+1)
    available[:, -1] = True
    return HopState(question, available, None)


class SentenceFeatures(nn.Module):
    """UΦ(sentence): one StoryEncoder, plus the exact-match feature of words shared with the question."""

    def __init__(self, config: MemNNConfig, num_words: int):
        super().__init__()
        self.words = StoryEncoder(config.encoder, num_words)
        match_config = dataclasses.replace(config.encoder, temporal=False)
        self.matches = StoryEncoder(match_config, MATCH_WORDS) if config.match_features else None

    def forward(self, story_ids: Tensor, matches: Tensor, ages: Tensor, weights: Tensor | None) -> Tensor:
        """story_ids, matches: (B, S, W); ages: (B, S); weights: position weights or None -> (B, S, D)."""
        features = self.words(story_ids, ages, weights)  # (B, S, D)
        if self.matches is not None:
            features = features + self.matches.encode_words(matches, weights)  # (B, S, D)
        return features


class Response(nn.Module):
    """R: s_R([x, m_o1 .. m_oK], w) = E([x, m_o1 .. m_oK])ᵀ U_R Φy(w) for every answer label w."""

    def __init__(self, config: MemNNConfig, vocab: Vocab):
        super().__init__()
        dim = config.encoder.embedding_dim
        self.question = StoryEncoder(config.encoder, vocab.num_words)
        self.facts = SentenceFeatures(config, vocab.num_words)
        self.context = ContextFeatures(config.encoder, vocab.num_words) if config.unseen_words > 0 else None  # in U_R
        self.hidden = nn.Linear((config.hops + 1) * dim, dim) if config.nonlinear else None  # W of NL
        self.answer = nn.Linear(dim, vocab.num_answers, bias=False)  # U_R Φy(w), one row per label
        for layer in (self.hidden, self.answer):
            if layer is not None:
                nn.init.normal_(layer.weight, std=config.encoder.init_std)

    def forward(self, question: Tensor, facts: Tensor) -> Tensor:
        """question: (B, D) UΦx(x); facts: (B, K, D) UΦx(m_ok), zero after the reader stopped -> (B, A)."""
        if self.hidden is None:
            features = question + facts.sum(dim=1)  # (B, D): Φx([x, m_o1 .. m_oK])ᵀ U_Rᵀ
        else:
            blocks = torch.cat([question[:, None], facts], dim=1)  # (B, K+1, D): one block per role
            features = torch.tanh(self.hidden(torch.tanh(blocks).flatten(1)))  # (B, D): tanh(W tanh(UΦx))
        return self.answer(features)  # (B, A)


class MemNN(ReaderModel):
    kind = "memnn"
    config_class = MemNNConfig
    hard_attention = True
    unknown_words = "keep"  # represented by exact matches (and context features): see the module docstring

    def __init__(self, config: MemNNConfig, vocab: Vocab):
        super().__init__()
        self.config = config
        dim, num_words = config.encoder.embedding_dim, vocab.num_words
        # O's U, in blocks: the question x, the facts found so far, and the candidate memories y.
        self.question = StoryEncoder(config.encoder, num_words)
        self.found = StoryEncoder(config.encoder, num_words)
        self.candidates = SentenceFeatures(config, num_words)
        self.context = ContextFeatures(config.encoder, num_words) if config.unseen_words > 0 else None  # in O's U
        self.num_words = num_words
        self.stop_memory = nn.Parameter(torch.empty(dim))  # m_∅ (AM)
        self.time_features = nn.Parameter(torch.empty(2, dim)) if config.time_features else None  # UΦt
        self.response = Response(config, vocab)
        for parameter in (self.stop_memory, self.time_features):
            if parameter is not None:
                nn.init.normal_(parameter, std=config.encoder.init_std)

    @classmethod
    def check_training_data(cls, examples: Sequence[Example]) -> None:
        missing = [e for e in examples if not e.supporting]
        if missing:
            raise DataError(f"{missing[0].source or 'a question'}: no supporting facts ({len(missing)} of "
                            f"{len(examples)} questions have none); the memnn reader learns from them (the third "
                            "tab-separated field of a question line): add them, or train --reader memn2n")

    def forward(self, batch: Batch) -> ReaderOutput:
        """batch.story_ids (B, S, W), memory_mask (B, S), question_ids (B, Wq); in training also
        supporting_ids (B, F) -> logits (B, A), attention (B, K, S) one-hot on the memories picked
        (a row of zeros once the reader stopped)."""
        S = batch.memory_mask.shape[1]
        words = self._words(batch)
        memory, matches, weights = self._write(batch, words)
        with torch.no_grad():  # argmax picks pass no gradient
            picks = self._pick_facts(memory, self._question(batch, words))  # (B, K)
        found = self.fact_targets(batch) if self.training else picks  # (B, K): teacher forcing in training
        logits = self._respond(batch, words, found, matches, weights)  # (B, A)
        attention = F.one_hot(picks, S + 1)[..., :S].to(logits.dtype)  # (B, K, S)
        return ReaderOutput(logits, attention)

    def _words(self, batch: Batch) -> Words:
        """Which words are unseen: those past the vocabulary, and in training (with unseen_words > 0)
        a random share of the known ones, whose own embedding is then dropped."""
        story_unseen = batch.story_ids >= self.num_words  # (B, S, W)
        question_unseen = batch.question_ids >= self.num_words  # (B, Wq)
        if self.training and self.context is not None:
            rate = self.config.unseen_words
            story_unseen = story_unseen | ((torch.rand(batch.story_ids.shape, device=story_unseen.device) < rate)
                                           & (batch.story_ids != PAD_ID))
            question_unseen = question_unseen | ((torch.rand(batch.question_ids.shape, device=question_unseen.device)
                                                  < rate) & (batch.question_ids != PAD_ID))
        return Words(batch.story_ids.masked_fill(story_unseen, self.num_words),
                     batch.question_ids.masked_fill(question_unseen, self.num_words), story_unseen, question_unseen)

    @staticmethod
    def _in_context(context: ContextFeatures | None, word_ids: Tensor, unseen: Tensor,
                    weights: Tensor | None = None) -> Tensor | float:
        """The context features of the unseen words (..., D), or 0 without them."""
        return 0.0 if context is None else context(word_ids, unseen, weights)

    def _question(self, batch: Batch, words: Words) -> Tensor:
        """UΦx(x) of O: (B, D)."""
        return self.question.encode_words(words.question) + self._in_context(
            self.context, batch.question_ids, words.question_unseen, self.question.word_weights(batch.question_ids))

    def _write(self, batch: Batch, words: Words | None = None) -> tuple[Memory, Tensor, Tensor | None]:
        """G: the sentences in their slots with their write times (and m_∅ after them)."""
        words = self._words(batch) if words is None else words
        real = batch.memory_mask  # (B, S)
        ages = slot_ages(real)  # (B, S)
        weights = self.question.word_weights(batch.story_ids)  # (B, S, W, D) or None
        matches = match_ids(batch.story_ids, batch.question_ids)  # (B, S, W): identities, unseen words too
        context = self._in_context(self.context, batch.story_ids, words.story_unseen, weights)  # (B, S, D) or 0
        candidates = self.candidates(words.story, matches, ages, weights) + context  # (B, S, D)
        stop = self.stop_memory.expand(real.shape[0], 1, -1)  # (B, 1, D)
        found = self.found(words.story, ages, weights) + context  # (B, S, D)
        real = F.pad(real, (0, 1))  # (B, S+1)
        ages = F.pad(ages, (0, 1))  # (B, S+1); m_∅'s age is never used (it is not real)
        memory = Memory(torch.cat([candidates, stop], dim=1), F.pad(found, (0, 0, 0, 1)), real, ages,
                        write_order(ages, real))
        return memory, matches, weights

    def _hop_scores(self, memory: Memory, state: HopState) -> tuple[Tensor, Tensor]:
        """One hop's s_Ot in parts: each memory's own score (B, S+1), UΦx(x)ᵀU(Φy(y) + [y written after
        the fact found last]·Φt), and the query's weight on "y older than y'" (B,)."""
        scores = torch.einsum("bsd,bd->bs", memory.candidates, state.query)  # (B, S+1)
        if self.time_features is None:
            return scores, scores.new_zeros(scores.shape[0])
        weights = state.query @ self.time_features.T  # (B, 2): the question's weight on each time feature
        if state.last is not None:
            newer = written_after(memory.ages, memory.real, state.last)  # (B, S+1)
            scores = scores + weights[:, NEWER_THAN_LAST, None] * newer  # (B, S+1)
        return scores, weights[:, OLDER_THAN_OTHER]

    def _hop_comparisons(self, memory: Memory, state: HopState) -> Tensor:
        """s_Ot(x, m_i, m_j) of every pair of memories at one hop. Returns (B, S+1, S+1)."""
        scores, order_weight = self._hop_scores(memory, state)  # (B, S+1), (B,)
        return compare_memories(scores, memory.order, order_weight)  # (B, S+1, S+1)

    def _advance(self, memory: Memory, state: HopState, chosen: Tensor) -> HopState:
        """The state after finding memory `chosen` (B,): its features join the query, it cannot be
        found again, and after m_∅ nothing else can (AM stops)."""
        stop = memory.real.shape[1] - 1
        found = memory.found.gather(1, chosen[:, None, None].expand(-1, 1, memory.found.shape[2]))[:, 0]  # (B, D)
        available = state.available.scatter(1, chosen[:, None], False) & (chosen != stop)[:, None]  # (B, S+1)
        available[:, stop] = True
        return HopState(state.query + found, available, chosen)

    def _pick_facts(self, memory: Memory, question: Tensor) -> Tensor:
        """O: the memory picked at each hop (B, K), each hop's query holding the earlier picks;
        S (= m_∅) from the hop the reader stopped at."""
        stop = memory.real.shape[1] - 1
        state = start_state(memory, question)
        picks = torch.full((question.shape[0], self.config.hops), stop, dtype=torch.long, device=question.device)
        for hop in range(self.config.hops):
            picks[:, hop] = pick_memory(self._hop_comparisons(memory, state), state.available)  # (B,)
            if (picks[:, hop] == stop).all():
                break  # every question stopped: the later hops pick m_∅ too
            state = self._advance(memory, state, picks[:, hop])
        return picks

    def _respond(self, batch: Batch, words: Words, found: Tensor, matches: Tensor, weights: Tensor | None) -> Tensor:
        """R over the question and the facts found (B, K) (slot S = m_∅) -> logits (B, A)."""
        context = self.response.context
        facts = self.response.facts(words.story, matches, slot_ages(batch.memory_mask), weights)  # (B, S, D)
        facts = facts + self._in_context(context, batch.story_ids, words.story_unseen, weights)  # (B, S, D)
        facts = F.pad(facts, (0, 0, 0, 1))  # (B, S+1, D): m_∅ adds nothing
        chosen = facts.gather(1, found[:, :, None].expand(-1, -1, facts.shape[2]))  # (B, K, D)
        question = self.response.question.encode_words(words.question) + self._in_context(
            context, batch.question_ids, words.question_unseen, self.question.word_weights(batch.question_ids))
        return self.response(question, chosen)  # (B, A)

    def fact_targets(self, batch: Batch) -> Tensor:
        """The slot each hop must pick (B, K): the annotated facts in order, then m_∅ (slot S)."""
        S, K = batch.memory_mask.shape[1], self.config.hops
        facts = batch.supporting_ids[:, :K]  # (B, ≤K)
        facts = F.pad(facts, (0, K - facts.shape[1]), value=NO_FACT)  # (B, K)
        return facts.masked_fill(facts == NO_FACT, S)  # (B, K)

    def loss(self, batch: Batch, output: ReaderOutput) -> Tensor:
        """Eqs. 6-8, summed over the batch: each hop's annotated fact (then m_∅) beats every other
        available memory by the margin γ, and the true answer beats every other answer by γ."""
        total = self._fact_loss(batch) + self._answer_loss(output.logits, batch.answer_ids)
        if self.training and self.config.response_on_picks:
            picks = picks_from_attention(output.attention)  # (B, K): the reader's own picks
            logits = self._respond(batch, self._words(batch), picks, match_ids(batch.story_ids, batch.question_ids),
                                   self.question.word_weights(batch.story_ids))  # (B, A)
            total = total + self._answer_loss(logits, batch.answer_ids)
        return total

    def _fact_loss(self, batch: Batch) -> Tensor:
        words = self._words(batch)
        memory, _, _ = self._write(batch, words)
        targets = self.fact_targets(batch)  # (B, K)
        stop = memory.real.shape[1] - 1
        # Questions without annotated facts (a test file may have none) teach nothing; hops after m_∅ neither.
        taught = (batch.supporting_ids != NO_FACT).any(dim=1)  # (B,)
        state = start_state(memory, self._question(batch, words))
        total = memory.candidates.new_zeros(())
        for hop in range(self.config.hops):
            scores, order_weight = self._hop_scores(memory, state)  # (B, S+1), (B,)
            target = targets[:, hop]  # (B,)
            order = memory.order.gather(1, target[:, None, None].expand(-1, 1, scores.shape[1]))[:, 0]  # (B, S+1)
            margins = scores.gather(1, target[:, None]) - scores + order_weight[:, None] * order  # (B, S+1): D[target, j]
            negatives = state.available.scatter(1, target[:, None], False) & taught[:, None]  # (B, S+1)
            total = total + margin_ranking_loss(margins, negatives, self.config.margin)
            taught = taught & (target != stop)
            if not taught.any():
                break  # every question's facts were found: the later hops teach nothing
            state = self._advance(memory, state, target)
        return total

    def _answer_loss(self, logits: Tensor, answer_ids: Tensor) -> Tensor:
        """Eq. 8: Σ over answers a ≠ r of max(0, γ - s_R(r) + s_R(a)); unseen answers teach nothing."""
        known = answer_ids != NO_ANSWER  # (B,)
        target = logits.gather(1, answer_ids.clamp(min=0)[:, None])  # (B, 1)
        negatives = known[:, None] & (torch.arange(logits.shape[1], device=logits.device) != answer_ids[:, None])
        return margin_ranking_loss(target - logits, negatives, self.config.margin)
