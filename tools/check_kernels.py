#!/usr/bin/env python3
"""Compile-check every CUDA kernel file and every template instance, without a GPU or CuPy.

For each file in lenet_gpu.cuda.KERNELS this writes a small .cu that includes the file and takes
the address of every listed kernel (which instantiates each template and fails on a name that
does not exist), then compiles it with nvcc for sm_90 with the flags CuPy uses. Prints one line
per file; exits non-zero with the compiler output if any file fails.

nvcc is taken from $NVCC, else $CUDA_HOME/bin/nvcc, else PATH, else /usr/local/cuda/bin/nvcc.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lenet_gpu import cuda  # noqa: E402  (plain Python: does not import CuPy)

FLAGS = ["-arch=sm_90", "-cubin", "-ftz=true"]  # + cuda.OPTIONS (-std=c++17, -DLENET_THREADS)


def find_nvcc():
    candidates = [os.environ.get("NVCC"),
                  os.environ.get("CUDA_HOME") and str(Path(os.environ["CUDA_HOME"]) / "bin" / "nvcc"),
                  shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    sys.exit("check_kernels: nvcc not found; set $NVCC or $CUDA_HOME, or put nvcc on PATH")


def instantiation_source(filename, names):
    refs = ",\n    ".join(f"(void*)&{name}" for name in names)
    return (f'#include "{filename}"\n\n'
            "// taking each kernel's address instantiates it (templates) or fails if it is missing\n"
            f"void* const* lenet_check_kernels()\n{{\n  static void* const k[] = {{\n    {refs}}};\n"
            "  return k;\n}\n")


def main():
    nvcc = find_nvcc()
    kdir = REPO / "kernels"
    options = FLAGS + list(cuda.OPTIONS) + [f"-I{kdir}"]
    failed = []
    with tempfile.TemporaryDirectory(prefix="check_kernels-") as tmp:
        for filename, names in cuda.KERNELS.items():
            src = Path(tmp) / f"check_{filename}"
            src.write_text(instantiation_source(filename, names))
            t0 = time.perf_counter()
            proc = subprocess.run([nvcc, *options, "-o", str(src.with_suffix(".cubin")), str(src)],
                                  capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            n_templates = len(cuda.template_instances(filename))
            status = "ok" if proc.returncode == 0 else "FAILED"
            print(f"{status:6} kernels/{filename}: {len(names)} kernels "
                  f"({n_templates} template instances), {seconds:.1f} s", flush=True)
            output = (proc.stdout + proc.stderr).strip()
            if proc.returncode != 0:
                failed.append(filename)
                print(output, file=sys.stderr)
            elif output:
                print(output)
    if failed:
        print(f"check_kernels: {len(failed)} file(s) failed: {', '.join(failed)} "
              f"({nvcc} {' '.join(options)})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
