"""Re-quantizes a GGUF file with llama.cpp's own quantizer: more published-style files to test against.

    python scripts/requantize.py models/SmolLM2-135M-Instruct.Q4_1.gguf Q4_K_M Q5_0 Q6_K Q8_0 F16

Writes models/SmolLM2-135M-Instruct.Q4_K_M.gguf and so on beside the source, through
llama_cpp.llama_model_quantize (needs llama-cpp-python; an optional tool, not in CI). A
quantized source is re-quantized (llama.cpp's allow_requantize): the values are the
source's, rounded again, which is what these files are for: running every type.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

# llama.cpp's LLAMA_FTYPE_MOSTLY_* for the file types people download.
FTYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10,
          "Q3_K_M": 12, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18, "BF16": 32}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or any(t not in FTYPES for t in argv[1:]):
        print(f"usage: requantize.py SOURCE.gguf TYPE... (TYPE one of {', '.join(FTYPES)})", file=sys.stderr)
        return 2
    try:
        import llama_cpp
    except ImportError:
        print("error: this script needs llama-cpp-python: pip install llama-cpp-python", file=sys.stderr)
        return 1
    source = Path(argv[0])
    stem = source.name.split(".")[0]
    for name in argv[1:]:
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype, params.allow_requantize, params.nthread = FTYPES[name], True, 2
        out = source.with_name(f"{stem}.{name}.gguf")
        if llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params)) != 0:
            print(f"error: llama.cpp could not quantize {source} to {name}", file=sys.stderr)
            return 1
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
