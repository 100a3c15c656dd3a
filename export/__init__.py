"""`python -m export` and its sub-commands: thin entry points of the repository checkout.

The export library is `sal_tf.export` (installed with the package); these modules only call it,
so the documented commands work from a clone: `python -m export`, `python -m export.verify`,
`python -m export.client`. Installed, the same commands are `sal-export`, `python -m
sal_tf.export.verify` and `python -m sal_tf.export.client`.
"""
