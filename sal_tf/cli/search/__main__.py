"""`python -m sal_tf.cli.search`: the `sal-search` command."""

from sal_tf.cli.search import run

run()
