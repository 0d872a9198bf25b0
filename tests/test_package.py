"""Packaging: the wheel ships the CUDA sources, and importing needs no CuPy."""
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_ships_every_kernel_file(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "-q", "-w", str(tmp_path), str(REPO)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("lenet_gpu-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    kernels = [p.name for p in (REPO / "kernels").iterdir() if p.is_file()]
    assert kernels, "kernels/ is empty"
    missing = [k for k in kernels if f"lenet_gpu/kernels/{k}" not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert "lenet_gpu/cli.py" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_import_without_cupy():
    code = ("import sys; sys.modules['cupy'] = None; import lenet_gpu; "
            "from lenet_gpu import backend; assert not backend.gpu_available(); print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
