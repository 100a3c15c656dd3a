from sal_tf.cli import search

__doc__ = search.__doc__  # `--help` shows the __main__ module's docstring: the command's usage

search.run()
