"""Command-line entry points of `sal_tf` (`python -m sal_tf.cli.<command>`).

Each module imports only `sal_tf.utils.app` (and TF-free modules) at the top, so `sal_app.run` can
quiet TensorFlow's start-up before anything imports it; the work is done by the library modules it
calls. `train_flags.py` is no command: the trainers' flags and their translation into configs.
"""
