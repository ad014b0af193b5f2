"""End-to-End Memory Network (Sukhbaatar, Szlam, Weston, Fergus 2015), equation for equation.

  u^1   = B q                                   (§2.1, question embedding)
  p_i   = softmax(u^kᵀ m_i),  m_i = A^k x_i     (eq. 1)
  o^k   = Σ_i p_i c_i,        c_i = C^k x_i     (eq. 2)
  u^k+1 = u^k + o^k  (adjacent)  or  H u^k + o^k  (layer-wise)   (§2.2)
  â     = softmax(W u^K+1)                      (eq. 3)

Adjacent tying (§2.2): A^k+1 = C^k, B = A^1 and W^T = C^K, so K hops need K + 1 embedding
matrices. Layer-wise tying: A^1 = ... = A^K, C^1 = ... = C^K, a separate B, a separate W and
the linear map H. W scores only the answer labels seen in training (the rows of C^K for those
labels' tokens when tied; a comma-joined label such as "n,w" is one token, as in the authors' code).
Not in the paper, and off by default: `dropout` on every embedded sentence and the question in training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from memqa.config import MemN2NConfig, TrainConfig
from memqa.data.batching import Batch
from memqa.data.vocab import Vocab
from memqa.models.base import Phase, ReaderModel, ReaderOutput
from memqa.nn.encoder import StoryEncoder, encode_many, noisy_slot_ages, slot_ages


def empty_slot_bias(memory_mask: Tensor, slots: int) -> Tensor:
    """What the attention adds to the scores of a story's S slots and its null slot, the same at every hop.

    A story of n sentences leaves slots - n memory slots padded with the null symbol (§4.1), whose
    embedding is zero: each scores u·0 = 0 and reads back 0, but takes part in the softmax (as in the
    authors' code), so attention can rest on "nothing" when no fact matches. MemN2N stores one null slot
    after the stories; its exp(0) is counted slots - n times by adding log(slots - n) to its score (-inf
    when the memory is full), and the batch's padding gets -inf.
    memory_mask: (B, S) -> (B, S+1): 0 for a stored sentence, -inf for padding, then the null slot's log(slots - n)."""
    empty = (slots - memory_mask.sum(dim=1, keepdim=True)).clamp(min=0).to(torch.float32)  # (B, 1)
    stored = torch.zeros(memory_mask.shape, dtype=torch.float32, device=memory_mask.device)  # (B, S)
    return torch.cat([stored.masked_fill_(~memory_mask, -torch.inf), empty.log()], dim=1)  # (B, S+1); log 0 = -inf


class MemN2N(ReaderModel):
    kind = "memn2n"
    config_class = MemN2NConfig

    def __init__(self, config: MemN2NConfig, vocab: Vocab):
        super().__init__()
        self.config = config
        enc, dim, num_words = config.encoder, config.encoder.embedding_dim, vocab.num_words
        if config.weight_tying == "adjacent":
            # embeddings[0] = B = A^1, embeddings[k] = C^k = A^k+1
            self.embeddings = nn.ModuleList(StoryEncoder(enc, num_words) for _ in range(config.hops + 1))
            self.hop_map = None
        else:
            # embeddings = [B, A, C] shared by every hop, with H mapping u between hops
            self.embeddings = nn.ModuleList(StoryEncoder(enc, num_words) for _ in range(3))
            self.hop_map = nn.Linear(dim, dim, bias=False)
            nn.init.normal_(self.hop_map.weight, std=enc.init_std)
        if config.tie_answer and self.hop_map is None:
            self.answer = None  # W^T = C^K: the answer labels' rows of the last embedding
            # (A, V) one-hot rows of the answer labels' words: picking the rows by a product keeps its backward a product
            self.register_buffer("answer_words", F.one_hot(torch.tensor(vocab.answer_word_ids()), num_words).float(),
                                 persistent=False)
        else:
            self.answer = nn.Linear(dim, vocab.num_answers, bias=False)  # W of eq. 3
            nn.init.normal_(self.answer.weight, std=enc.init_std)
        self.softmax_attention = True  # False during linear start (§4.2)

    def _memory_encoders(self, hop: int) -> tuple[int, int]:
        """Indices into self.embeddings of (A^hop, C^hop), hop counted from 0."""
        return (hop, hop + 1) if self.hop_map is None else (1, 2)

    def forward(self, batch: Batch) -> ReaderOutput:
        """batch.story_ids (B, S, W), memory_mask (B, S), question_ids (B, Wq) -> logits (B, A), attention (B, K, S)."""
        memory_mask = batch.memory_mask  # (B, S)
        slots = memory_mask.shape[1]
        if self.training and self.config.random_noise > 0:
            ages = noisy_slot_ages(memory_mask, self.config.random_noise, self.config.encoder.memory_size - 1)
        else:
            ages = slot_ages(memory_mask)  # (B, S)
        # The stories, a null slot (a sentence of null symbols: all zero, standing for the story's empty slots,
        # see empty_slot_bias) and the question, encoded by every embedding matrix in one product.
        story, question = batch.story_ids, batch.question_ids  # (B, S, W), (B, Wq)
        width = max(story.shape[2], question.shape[1])
        sentences = torch.cat([F.pad(story, (0, width - story.shape[2])), story.new_zeros(len(story), 1, width),
                               F.pad(question, (0, width - question.shape[1]))[:, None]], dim=1)  # (B, S+2, W)
        encoded = encode_many(self.embeddings, sentences, ages)  # (B, S+2, n, D), n = len(self.embeddings)
        if self.config.dropout:
            encoded = F.dropout(encoded, self.config.dropout, self.training)
        memories = encoded[:, :-1].unbind(dim=2)  # memories[i]: (B, S+1, D) by embeddings[i]
        controller = encoded[:, -1, 0]  # u^1 = B q: (B, D), B = embeddings[0]
        if self.softmax_attention:
            bias = empty_slot_bias(memory_mask, self.config.encoder.memory_size)  # (B, S+1)
        else:
            mask = F.pad(memory_mask, (0, 1))  # (B, S+1): the null slot reads nothing
        attention = []
        for hop in range(self.config.hops):
            input_index, output_index = self._memory_encoders(hop)
            scores = (memories[input_index] * controller[:, None, :]).sum(dim=2)  # u^kᵀ m_i: (B, S+1)
            # p: softmax (eq. 1), or none during linear start (§4.2)
            weights = (scores + bias).softmax(dim=1) if self.softmax_attention else scores * mask  # (B, S+1)
            read = (weights[:, :, None] * memories[output_index]).sum(dim=1)  # o^k = Σ_i p_i c_i: (B, D)
            controller = (controller if self.hop_map is None else self.hop_map(controller)) + read  # u^k+1: (B, D)
            if self.config.relu:
                controller = F.relu(controller)
            attention.append(weights)
        attention = torch.stack(attention, dim=1)[:, :, :slots]  # (B, K, S)
        return ReaderOutput(self._answer_logits(controller), attention)  # (B, A), (B, K, S)

    def _answer_logits(self, controller: Tensor) -> Tensor:
        """controller u^K+1: (B, D) -> (B, A) scores W u (eq. 3)."""
        if self.answer is not None:
            return self.answer(controller)  # (B, A)
        answer_rows = self.answer_words @ self.embeddings[-1].word_embedding.weight  # (A, D) = rows of C^K
        return controller @ answer_rows.T  # (B, A)

    def loss(self, batch: Batch, output: ReaderOutput) -> Tensor:
        """Cross-entropy summed, not averaged, over the batch (§4.2)."""
        return F.cross_entropy(output.logits, batch.answer_ids, reduction="sum", ignore_index=-1)

    def phases(self, train: TrainConfig) -> list[Phase]:
        """Linear start (§4.2) as run by the authors' code: `linear_start_epochs` without softmax at
        lr 0.005, then the full schedule, which also starts at 0.005 (config_babi.m)."""
        if not self.config.linear_start or train.linear_start_epochs == 0:
            return super().phases(train)
        lr = train.linear_start_learning_rate
        return [Phase("linear start", train.linear_start_epochs, lr, train.linear_start_epochs + 1, 1.0),
                Phase("train", train.epochs, lr, train.decay_every, train.decay_factor)]

    def enter_phase(self, phase: Phase) -> None:
        self.softmax_attention = phase.name != "linear start"
