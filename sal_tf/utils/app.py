"""One top-level handler for the command-line entry points, and quiet TensorFlow start-up.

    from sal_tf.utils import app as sal_app   # before anything imports TensorFlow
    ...
    if __name__ == "__main__":
        sal_app.run(main)

`run` wraps `absl.app.run`: a `UserError` (and the `ValueError` / `FileNotFoundError` /
`NotADirectoryError` that argument checks raise) ends the program with `error: <message>` on
stderr and exit status 2 (or the exception's `exit_status`), never a Python traceback.

TensorFlow's C++ start-up lines (oneDNN, CPU features, cuInit, "absl::InitializeLog") are
written before `TF_CPP_MIN_LOG_LEVEL` is read, so `quiet_tensorflow_import` imports TensorFlow
with file descriptor 2 sent to a temporary file and forwards only the lines that are not that
noise. `--verbose=2` (or `SAL_TF_NATIVE_LOGS=1`) shows everything.
"""

import contextlib
import os
import re
import sys
import tempfile

_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IWE]\d{4} [\d:. ]+\s*\d+ (port|cudart_stub|cpu_feature_guard|cuda_platform|cuda_executor"
    r"|cuda_dnn|cuda_fft|cuda_blas|computation_placer|gpu_device|service)\.cc:\d+\]"
    r"|To enable the following instructions:"
    r"|WARNING: All log messages before)"
)


class UserError(Exception):
    """A mistake in what the user asked for (flag, file, folder): printed as one `error:` line."""

    exit_status = 2


USER_ERRORS = (UserError, ValueError, FileNotFoundError, NotADirectoryError, FileExistsError)


def native_logs_wanted(argv=None):
    """True when the command line asks for `--verbose` ≥ 2 or `SAL_TF_NATIVE_LOGS=1` is set."""
    if os.environ.get("SAL_TF_NATIVE_LOGS") == "1":
        return True
    argv = sys.argv if argv is None else argv
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--verbose=") else None
        if arg == "--verbose" and i + 1 < len(argv):
            value = argv[i + 1]
        if value is not None and value.strip().isdigit() and int(value) >= 2:
            return True
    return False


# libjpeg's own messages about the corrupt files that the image check reports by name.
JPEG_NOISE = re.compile(r"^(Input file read error|Corrupt JPEG data|Premature end of JPEG file|Invalid JPEG file)")


@contextlib.contextmanager
def filtered_native_stderr(noise=_NOISE):
    """Sends file descriptor 2 (C/C++ output included) to a temporary file; forwards non-`noise` lines after."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines():
                if line.strip() and not noise.match(line):
                    print(line, file=sys.stderr)


def quiet_tensorflow_import(argv=None):
    """Imports TensorFlow (and initialises its devices) without its C++ start-up noise."""
    if "tensorflow" in sys.modules or native_logs_wanted(argv):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with filtered_native_stderr():
        import tensorflow as tf

        # Initialising the devices here also catches the cuInit lines, but a multi-worker run must
        # configure its collective ops first (MultiWorkerMirroredStrategy reads TF_CONFIG).
        if "TF_CONFIG" not in os.environ:
            tf.config.list_physical_devices()


def help_wanted(argv=None):
    """True when the command line asks for absl's help (`--help`, `-h`, `--helpfull`, `--helpshort`)."""
    argv = sys.argv if argv is None else argv
    return any(a in ("--help", "-h", "-?", "--helpfull", "--helpshort", "--helpxml") for a in argv[1:])


def report_error(error):
    """Prints `error: <message>` for a user error; returns the exit status."""
    print(f"error: {error}", file=sys.stderr)
    return int(getattr(error, "exit_status", 2))


def show_key_flags_in_help(module_name):
    """Makes `--help` list `module_name`'s key flags when the program is a console script.

    absl's `--help` shows the key flags of `sys.argv[0]`, which for a console script is the
    generated wrapper, not the module that defined the flags.
    """
    from absl import flags

    main_flags = flags.FLAGS.get_key_flags_for_module(sys.argv[0])
    for flag in flags.FLAGS.get_key_flags_for_module(module_name):
        if flag not in main_flags:
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def run(main, argv=None, help_module=None, needs_tensorflow=None):
    """`absl.app.run(main)` with the user-error handler and a quiet TensorFlow import.

    `help_module`: the module whose key flags `--help` lists (default: the module of `main`).
    `needs_tensorflow`: a function of the command line (`sys.argv` list) saying whether this run
    uses TensorFlow (default: always); a run that does not starts without importing it.
    """
    from absl import app

    show_key_flags_in_help(help_module or main.__module__)
    wanted = needs_tensorflow is None or needs_tensorflow(sys.argv if argv is None else argv)
    if wanted and not help_wanted(argv):  # `--help` needs no TensorFlow: answer it in a second, not ten
        quiet_tensorflow_import(argv)

    def guarded(args):
        from absl import flags, logging

        if not native_logs_wanted() and not flags.FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)  # TF's Python INFO lines (checkpoint sharding, ...)
        try:
            main(args)
        except USER_ERRORS as e:
            sys.exit(report_error(e))
        except Exception as e:
            if hasattr(e, "exit_status"):  # e.g. training.TrainingDiverged (status 3)
                sys.exit(report_error(e))
            raise

    app.run(guarded, argv=argv)


def require_flags(*names):
    """Refuses a run where any of the flags `names` is empty: `--name is required (see --help).`"""
    from absl import flags

    for name in names:
        if not flags.FLAGS[name].value:
            raise UserError(f"--{name} is required (see --help).")


def check_new_output(flag, suffix, overwrite):
    """The path of output flag `flag`: it must end with `suffix` and, unless `overwrite`, not exist yet."""
    from absl import flags

    path = flags.FLAGS[flag].value
    if not path.endswith(suffix):
        raise UserError(f"--{flag} must end with {suffix}. Received: {path!r}")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"--{flag} {path!r} exists; pass --overwrite to replace it.")
    return path


def no_arguments(argv):
    """Refuses positional arguments (absl passes them through): a typo such as `--stage 2` shows up here."""
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}: every option is a --flag=value (see --help).")
