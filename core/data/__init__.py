"""Data, the first stage: acquire the raw files (`acquire`), prepare the splits (`preparation`),
the input rules (`rules`), the training profile (`profile`), reading batches (`batches`) and
storing accepted ones (`batch_store`).
"""
