"""Measurement studies: what a setting, a latent or a seed does to the figures (samplers, guidance, training
length, autoencoders, conditioning design, sampling faults, seeds). Run one from the checkout as
``python -m studies.<name>``; each writes ``reports/studies/<name>.json``, shown by ``python -m bench.page``.
They choose on the validation split; the reported test figures come from the notebooks."""
