"""What every `python -m jaxmodel.X` command shares: Ctrl-C and SIGTERM end it with one line.

    if __name__ == "__main__":
        sys.exit(cli.run(main))

A known mistake is each command's own `error: ...` line; an interruption is this
module's, anywhere in the command: no traceback, and the shell's exit code (130 for
SIGINT, 143 for SIGTERM). `jaxmodel.train` also stops its loop cleanly, after a step
and with a checkpoint (train.StopRequest); this is for everything else.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that `finally` blocks still run."""


def _raise_terminated(signum, frame):
    raise Terminated


def run(main: Callable[[list[str]], int], argv: list[str] | None = None,
        interrupted: str = "files being written when it came may be incomplete") -> int:
    """`main(argv)`, with SIGINT and SIGTERM turned into one line, "interrupted (SIGNAL);
    " + `interrupted` (what the command can say about its files), and exit code 130 or 143."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return main(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:  # the reader of stdout went away (`... | head`): as the shell's tools do, stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes stdout
        return 141  # 128 + SIGPIPE
    except (KeyboardInterrupt, Terminated) as err:
        name = "SIGTERM" if isinstance(err, Terminated) else "SIGINT"
        print(f"\ninterrupted ({name}); {interrupted}", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
