"""Pure, batched tensor code shared by the readers.

Dimension glossary (every shape comment in memqa uses these letters):
  B  batch (questions)            S  memory slots (sentences of a story)
  W  words per sentence           D  embedding size
  V  word vocabulary              A  answer vocabulary
  K  hops                         F  supporting facts per question
  H  heads (NTM)                  N  memory rows (NTM)        M  memory row width (NTM)
  Hr, Hw  read, write heads (NTM)  C  controller units (NTM)  L  controller layers (NTM)
  T  time steps (NTM sequences; T_in input, T_out answer steps)  I, O  input, output bits per step (NTM)
  Z  shift offsets -shift_range..+shift_range (NTM)
"""
