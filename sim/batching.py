"""Default batching limits of the serving pools, in one place (and importable without the engine).

The decode pool takes the same limits as the aggregated engine's flags (``--max-batch-tokens`` 2,048 tokens per
step, ``--max-seqs`` 128 running sequences per rank, vLLM's defaults as the CLI states). The prefill pool's
budget is a project choice: a prefill-only step has no decodes to protect, so it batches 8,192 tokens
(docs/ENGINE.md, "Disaggregated serving").
"""

DEFAULT_PREFILL_MAX_BATCH_TOKENS = 8192
DEFAULT_PREFILL_MAX_SEQS = 128
DEFAULT_DECODE_MAX_BATCH_TOKENS = 2048
DEFAULT_DECODE_MAX_SEQS = 128
