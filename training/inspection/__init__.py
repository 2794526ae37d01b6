"""Looking inside a model and auditing it. `text_view` writes what `wenlm inspect` shows of one text: the surprisal
of every token (`tokens`, `html`), the logit lens (`lens`: each layer's residual stream read through the final norm
and head) and every attention head's pattern (`attention`, `attention_html`). The privacy audit (`wenlm audit`):
`canaries` inserted into pretraining data, their `exposure`, the `extraction` of training text, and `audit`, which
runs them and writes audit.json/audit.md."""
