"""The readers: each maps a Batch to ReaderOutput(logits, attention) and owns its loss."""
