"""The built-in corpus: a probabilistic grammar of Chinese and English stories, dialogues and task sets whose
documents carry their exact generation probability, so the corpus has a known entropy floor.

`vocabulary` holds the word tables, `rules` the sentence templates, `sampling` draws documents, `parsing` and
`entropy` recover a document's exact log-probability and the corpus entropy, `tasks` builds the QA, translation and
classification sets, `grammar` is the public face re-exporting all of it, and `command` is `wenlm corpus`.
"""
