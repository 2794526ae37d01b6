"""Training a study's cells: the model sizes (`grid`), the study's tokenizer, token stream and validation set
(`study_data`), one (model, D) cell in its regime (`cells`), which cells in what order and time (`planning`), and
the files a rerun resumes from (`study_folder`)."""
