"""jaxmodel.cli: an interrupted command ends with one line and the shell's exit code."""

import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from jaxmodel import cli


def test_keyboard_interrupt_is_one_line_and_130(capsys):
    def main(argv):
        raise KeyboardInterrupt

    assert cli.run(main, []) == 130
    assert capsys.readouterr().err.strip() == "interrupted (SIGINT); files being written when it came may be incomplete"


def test_a_main_that_returns_keeps_its_code():
    assert cli.run(lambda argv: len(argv), ["a", "b"]) == 2


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: signal.Signals(s).name)
def test_a_real_command_interrupted_mid_way(tmp_path, signum):
    # A corpus of a million stories takes minutes: the signal lands while it is being made.
    out = tmp_path / "corpus.txt"
    # A shell starts a background job (`make test &`) with SIGINT ignored, and Python keeps an
    # ignored SIGINT ignored: the command gets the default, as from a terminal's Ctrl-C.
    process = subprocess.Popen([sys.executable, "-m", "jaxmodel.corpus", "--out", str(out), "--stories", "1000000"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(3)  # past the imports, into the stories
    assert process.poll() is None, "the command should still be running"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr and f"interrupted ({signal.Signals(signum).name})" in stderr, stderr


def test_a_closed_stdout_ends_quietly():
    """`python -m jaxmodel.X | head`: the reader going away is no traceback, as for the shell's tools."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "jaxmodel.config", "--json", "configs/gollm-85m.yaml"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and "Traceback" not in err, err
