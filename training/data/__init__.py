"""From raw text files to packed training blocks.

`reading` opens files (decompression, lines, JSON records, text types) and names what it cannot read, `sources`
resolves and reads txt/jsonl/json/parquet/csv/Hub/built-in sources, `cleaning` normalises, filters,
deduplicates and scrubs PII (`pii`), `splitting` holds out validation documents, `packing` tokenizes and packs
blocks, `cache` keeps every stage as Arrow files, and `pipeline.prepare_datasets` runs them in order. `tasks` reads
the fine-tuning rows (SFT chat rows, classification rows).
"""
