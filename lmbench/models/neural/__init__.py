"""Neural language models on PyTorch: one shell (:mod:`.shell`), two networks (:mod:`.recurrent`,
:mod:`.transformer`), their training loop (:mod:`.training`) and what it runs on (:mod:`.devices`,
:mod:`.precision`, :mod:`.distributed`, :mod:`.progress`)."""
