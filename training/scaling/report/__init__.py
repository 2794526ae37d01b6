"""REPORT.md of a study (`markdown`): the answer and its validation (`answer`), predictions and conclusions
(`predictions`), the discussion and reproduction sections (`discussion`), number formats (`formatting`) and the
plots (`plots`)."""
