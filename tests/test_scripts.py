"""The scripts outside the test suite fail with one clear line when llama-cpp-python is missing."""

import subprocess
import sys

import pytest

from conftest import ROOT

NEEDS_LLAMA_CPP = "error: this script needs llama-cpp-python: pip install llama-cpp-python (builds llama.cpp from source, ~10 min)\n"


@pytest.mark.parametrize("script, args", [("check_llama_cpp.py", ["model.gguf"]), ("compare_engines.py", [])])
def test_scripts_that_need_llama_cpp_say_so(script, args):
    # sys.modules["llama_cpp"] = None makes `import llama_cpp` fail even where it is installed.
    # sys.path[0] is the script's directory, as when Python runs a script file.
    code = (f"import runpy, sys; sys.modules['llama_cpp'] = None; sys.path.insert(0, {str(ROOT / 'scripts')!r}); "
            f"sys.argv = [{script!r}, *{args!r}]; runpy.run_path({str(ROOT / 'scripts' / script)!r}, run_name='__main__')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1 and run.stderr == NEEDS_LLAMA_CPP, run.stderr
    assert run.stdout == ""
