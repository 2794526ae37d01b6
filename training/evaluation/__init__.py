"""Measuring and using a trained model: `evaluate` (`wenlm evaluate`: language modelling, QA, translation,
summaries, classification), `generate` and `chat` (the commands of the same names), and `metrics/`, the local
`evaluate` modules loaded by path so they work offline.
"""
