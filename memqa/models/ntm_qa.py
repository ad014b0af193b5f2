"""The Neural Turing Machine reader of bAbI stories (Graves, Wayne, Danihelka 2014, on the shared encoder).

  x_t = [m_t ; 0]      the story's sentences, oldest first (StoryEncoder: m_t = Σ_j l_j A x_tj + T_A(t))
  q   = [Σ_j l_j A q_j ; 1]   the question, the input of the last `hops` steps (its flag tells it from a sentence)
  y_t, state_t = NTM(x_t, state_t-1)       (§3, Figure 1: the controller addresses, reads and writes memory)
  â = softmax(y_T)                         the last question step's output scores the answers

Padding slots of a short story are not steps: the state goes past them unchanged, and only the stories
with a sentence in a slot are computed. The cell (memqa/nn/ntm.py) is the one that learns the algorithmic
tasks; what it writes where is its own business, so the attention a reader shows is its read weighting
mapped back to sentences (`sentence_attention`): the share of each read that comes from rows last written
while the NTM read that sentence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from memqa.config import NTMQAConfig
from memqa.data.batching import Batch
from memqa.data.vocab import Vocab
from memqa.models.base import Optimizer, ReaderModel, ReaderOutput
from memqa.nn.encoder import StoryEncoder
from memqa.nn.ntm import NTMCell, NTMState


def written_by(writes: Tensor) -> Tensor:
    """writes: (B, T, N), how much of each row step t overwrote (0-1). Returns (B, T, N): how much of each
    row, after the last step, still holds what step t wrote: w_t · Π_{t' > t} (1 - w_t')."""
    kept_after = (1 - writes).flip(1).cumprod(dim=1).flip(1)  # Π_{t' >= t} (1 - w_t'): (B, T, N)
    later = torch.cat([kept_after[:, 1:], torch.ones_like(writes[:, :1])], dim=1)  # Π_{t' > t}: (B, T, N)
    return writes * later  # (B, T, N)


def sentence_attention(story_writes: Tensor, question_writes: Tensor, question_reads: Tensor) -> Tensor:
    """The read weighting of each question step, mapped to the sentences whose writes the rows hold.

    story_writes (B, S, N) and question_writes (B, K, N): the rows each step overwrote (1 - Π over write heads
    of 1 - w; 0 for a padding slot); question_reads (B, K, N): each question step's read weighting, averaged
    over read heads. Question step k reads the memory left by the story and the question steps before it.
    Returns (B, K, S); a row's weight on sentences sums to at most 1 (the rest is the initial memory)."""
    sentences = story_writes.shape[1]
    hops = [torch.einsum("bn,bsn->bs", question_reads[:, k],
                         written_by(torch.cat([story_writes, question_writes[:, :k]], dim=1))[:, :sentences])
            for k in range(question_reads.shape[1])]  # each (B, S)
    return torch.stack(hops, dim=1)  # (B, K, S)


def overwritten(weightings: Tensor) -> Tensor:
    """Write weightings (B, Hw, N) -> (B, N): how much of each row the step's write heads overwrote together."""
    return 1 - (1 - weightings).prod(dim=1)  # (B, N)


def _rows(state: NTMState, rows: Tensor) -> NTMState:
    """The state of the batch rows `rows` (R,) alone."""
    return NTMState(*(t[rows] for t in state[:4]), *(t[:, rows] for t in state[4:]))  # (R, ., .), (L, R, C)


def _put(state: NTMState, rows: Tensor, new: NTMState) -> NTMState:
    """`state` with its batch rows `rows` (R,) replaced by `new`'s (R rows)."""
    return NTMState(*(t.index_copy(0, rows, n) for t, n in zip(state[:4], new[:4])),
                    *(t.index_copy(1, rows, n) for t, n in zip(state[4:], new[4:])))


# Where the heads start (NTMQAConfig.head_start; ours, chosen on validation, docs/ntm-reader.md): write heads
# that move one row a step (gate g ≈ 0, the shift on +1), so that each sentence starts with a row of its own,
# and read heads that address by content (g ≈ 1, a sharp key). Training may change both. Without them the write
# heads blur over the first rows, and on task 1 (10k) the reader stays near 52%, as with an LSTM controller.
START_GATE_LOGIT = 4.0  # sigmoid(±4): g = 0.982 for the read heads, 0.018 for the write heads
START_SHIFT_LOGIT = 4.0  # the +1 shift's logit, 0 for the others: s(+1) = 0.96 with three shifts
START_KEY_STRENGTH = 10.0  # β of the read heads (softplus(10) = 10.00): a cosine similarity 0.3 above the
# others then weighs e^3 = 20 times more; β = softplus(0) = 0.69 reads all 128 rows almost evenly


@torch.no_grad()
def start_heads(cell: NTMCell) -> None:
    """Set the biases of the cell's head layer so that its heads start as the START_* constants say."""
    config, size, width = cell.config, cell.addressing_size, cell.config.memory_width
    for head in range(config.read_heads + config.write_heads):
        start = head * size  # a head's raw parameters: key (M), β, g, γ, then the shifts -R..+R (Z)
        if head < config.read_heads:
            cell.head_layer.bias[start + width] = START_KEY_STRENGTH
            cell.head_layer.bias[start + width + 1] = START_GATE_LOGIT
        else:
            cell.head_layer.bias[start + width + 1] = -START_GATE_LOGIT
            cell.head_layer.bias[start + width + 3 : start + size] = 0.0
            cell.head_layer.bias[start + width + 3 + config.shift_range + 1] = START_SHIFT_LOGIT  # offset +1


class NTMQA(ReaderModel):
    """An NTM cell reading one encoded sentence a step, then the question for `config.hops` steps."""

    kind = "ntm-qa"
    config_class = NTMQAConfig
    attention_rest = "memory no sentence wrote"

    def __init__(self, config: NTMQAConfig, vocab: Vocab):
        super().__init__()
        self.config = config
        self.encoder = StoryEncoder(config.encoder, vocab.num_words)
        self.cell = NTMCell(config.cell_config(config.encoder.embedding_dim + 1, vocab.num_answers))
        if config.head_start:
            start_heads(self.cell)

    def forward(self, batch: Batch) -> ReaderOutput:
        """batch.story_ids (B, S, W), memory_mask (B, S), question_ids (B, Wq) -> logits (B, A), attention (B, K, S)."""
        memory_mask = batch.memory_mask  # (B, S)
        B, S = memory_mask.shape
        sentences = self.encoder(batch.story_ids)  # (B, S, D)
        question = self.encoder.encode_words(batch.question_ids)  # (B, D)
        sentences = F.pad(sentences, (0, 1))  # (B, S, D+1): flag 0
        question = F.pad(question, (0, 1), value=1.0)  # (B, D+1): flag 1
        state = self.cell.initial_state(question)
        story_writes = [question.new_zeros(B, 0, self.config.memory_rows)]  # (B, 0, N), then (B, 1, N) per sentence
        for slot in range(S):  # only the stories that have a sentence in this slot take a step
            if bool(memory_mask[:, slot].all()):
                _, state = self.cell.step(sentences[:, slot], state)
                story_writes.append(overwritten(state.write_weightings)[:, None])  # (B, 1, N)
                continue
            rows = memory_mask[:, slot].nonzero().squeeze(1)  # (R,)
            writes = sentences.new_zeros(B, self.config.memory_rows)  # (B, N)
            if len(rows):
                _, stepped = self.cell.step(sentences[rows, slot], _rows(state, rows))
                state = _put(state, rows, stepped)
                writes = writes.index_copy(0, rows, overwritten(stepped.write_weightings))
            story_writes.append(writes[:, None])  # (B, 1, N)
        question_reads, question_writes = [], []
        for _ in range(self.config.hops):
            logits, state = self.cell.step(question, state)  # (B, A)
            question_reads.append(state.read_weightings.mean(dim=1))  # (B, N)
            question_writes.append(overwritten(state.write_weightings))  # (B, N)
        attention = sentence_attention(torch.cat(story_writes, dim=1), torch.stack(question_writes, dim=1),
                                       torch.stack(question_reads, dim=1))  # (B, K, S)
        return ReaderOutput(logits, attention)

    def loss(self, batch: Batch, output: ReaderOutput) -> Tensor:
        """Cross-entropy summed over the batch, as MemN2N's."""
        return F.cross_entropy(output.logits, batch.answer_ids, reduction="sum", ignore_index=-1)

    def make_optimizer(self, learning_rate: float, weight_decay: float = 0.0) -> Optimizer:
        """Adam, as Collier & Beel 2018 train their NTM."""
        return torch.optim.Adam(self.parameters(), lr=learning_rate, weight_decay=weight_decay)
