"""Predicting real images with the shipped model: MNIST test digits exported the way people
photograph and scan digits (dark ink on white, a 200x200 page, off-centre, other stroke
widths, JPEG), non-images and blank pages, the Python API's speed, and a fresh install that
predicts with no MNIST files anywhere."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import lenet_gpu
from lenet_gpu import cli
from lenet_gpu.images import read_images, to_mnist
from lenet_gpu.predict import classify, prepare, probabilities

PIL = pytest.importorskip("PIL", reason="reading image files needs Pillow (the images extra)")
from PIL import Image, ImageFilter  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "tests" / "data" / "seven.png"      # a test digit as a user's photo would be


def realistic(digit, rng):
    """An MNIST digit (28x28, ink bright) as a picture of a digit on paper: dark ink on white,
    2.5 to 5x larger, a thinner or thicker stroke, somewhere on a 200x200 page, grey noise."""
    scale = rng.uniform(2.5, 5.0)
    size = int(28 * scale)
    im = Image.fromarray(digit).resize((size, size), Image.BICUBIC)
    stroke = rng.integers(-1, 2)
    if stroke > 0:
        im = im.filter(ImageFilter.MaxFilter(3))
    elif stroke < 0:
        im = im.filter(ImageFilter.MinFilter(3))
    page = Image.new("L", (200, 200), int(rng.integers(215, 256)))
    ink = Image.fromarray(255 - np.asarray(im)).point(lambda v: v * 0.7)     # grey-black ink
    top, left = (int(v) for v in rng.integers(0, 200 - size + 1, 2))
    page.paste(ink, (left, top), mask=im)
    noisy = np.asarray(page, float) + rng.normal(0, 4, (200, 200))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def exported(mnist_dir, tmp_path_factory):
    from lenet_gpu.data import load_mnist
    _, _, x_test, y_test = load_mnist(mnist_dir)
    rng = np.random.default_rng(42)
    pick = rng.choice(len(x_test), 1000, replace=False)
    d = tmp_path_factory.mktemp("photos")
    for k, i in enumerate(pick):
        im = realistic(x_test[i], rng)
        if k % 2:
            im.save(d / f"{k:04d}.jpg", quality=int(rng.integers(60, 95)))
        else:
            im.convert("RGB").save(d / f"{k:04d}.png")
    return d, y_test[pick]


def test_the_shipped_model_reads_98_percent_of_photographed_digits(exported, capsys):
    d, labels = exported
    assert cli.main(["predict", str(d), "--json", "--backend", "numpy"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 1000
    got = np.array([r["class"] for r in results])
    accuracy = float(np.mean(got == labels))
    assert accuracy >= 0.98, f"{accuracy:.3f} of 1,000 photographed test digits"
    assert all(0 < r["probability"] <= 1 and len(r["top"]) == 3 for r in results)


def test_predict_prints_the_class_its_probability_and_the_runners_up(capsys):
    assert cli.main(["predict", str(SAMPLE), "--top", "2", "--backend", "numpy"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{SAMPLE}: 7 (") and "; then " in line


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("hello, not an image"), "not an image we can read"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: Image.new("L", (64, 64), 255).save(p.with_suffix(".png")) or
     p.with_suffix(".png").rename(p), "holds no ink"),
    (lambda p: Image.fromarray(np.full((50, 50), 200, np.uint8) + np.random.default_rng(0).integers(
        0, 3, (50, 50)).astype(np.uint8)).save(p, format="JPEG"), "holds no ink"),
])
def test_non_images_and_blank_pages_are_named(tmp_path, capsys, make, message):
    p = tmp_path / "input.png"
    make(p)
    assert cli.main(["predict", str(p), "--backend", "numpy"]) == 2
    err = capsys.readouterr().err
    assert str(p) in err and message in err and "Traceback" not in err


def test_every_input_kind_gives_the_same_digit(tmp_path):
    """A PNG, the same digit as .npy (2-D and a stack), as IDX, and a directory of them."""
    digit = to_mnist(np.asarray(Image.open(SAMPLE).convert("L"), float))
    np.save(tmp_path / "one.npy", digit)
    np.save(tmp_path / "stack.npy", np.stack([digit, digit]))
    header = bytes([0, 0, 0x08, 3]) + b"".join(n.to_bytes(4, "big") for n in (1, 28, 28))
    (tmp_path / "one-idx3-ubyte").write_bytes(header + digit.tobytes())
    images, names = read_images([SAMPLE, tmp_path])
    assert len(images) == 5 and names[0] == str(SAMPLE)
    assert all(np.array_equal(im, digit) for im in images)
    model = lenet_gpu.pretrained()
    assert {top[0][0] for _, top in classify(model, [SAMPLE, tmp_path])} == {7}


def test_colour_light_on_dark_and_transparent_pictures(tmp_path):
    digit = np.asarray(Image.open(SAMPLE).convert("L"))
    rgb = np.stack([digit, digit // 2, 255 - digit // 3], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    Image.fromarray(255 - digit).save(tmp_path / "negative.bmp")
    rgba = np.zeros(digit.shape + (4,), np.uint8)
    rgba[..., 3] = 255 - digit                        # black ink on a transparent page
    Image.fromarray(rgba).save(tmp_path / "ink.png")
    Image.fromarray(digit).save(tmp_path / "scan.gif")
    model = lenet_gpu.pretrained()
    assert [top[0][0] for _, top in classify(model, [tmp_path])] == [7, 7, 7, 7]


def test_one_image_through_the_api_takes_under_2_ms(capsys):
    model = lenet_gpu.pretrained(backend_name="numpy")
    x = prepare(model, read_images([SAMPLE])[0])
    probabilities(model, x)
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        probabilities(model, x)
        times.append(time.perf_counter() - t0)
    best = min(times)
    batch = prepare(model, np.repeat(read_images([SAMPLE])[0], 1000, axis=0))
    t0 = time.perf_counter()
    probabilities(model, batch)
    per_second = 1000 / (time.perf_counter() - t0)
    with capsys.disabled():
        print(f"\n[predict] one image {best * 1e3:.2f} ms (median {np.median(times) * 1e3:.2f} ms); "
              f"{per_second:,.0f} images/s at batch 1,000")
    assert best <= 2e-3


def test_the_shipped_model_records_how_it_was_made():
    model = lenet_gpu.pretrained()
    training = model.meta["training"]
    assert training["command"].startswith("lenet-gpu train") and "--seed" in training["command"]
    assert training["test_error_pct"] <= 0.7
    assert model.meta["preprocessing"] == {"scale": "unit", "pad": 0}
    assert lenet_gpu.predict.PRETRAINED.stat().st_size < 400_000


@pytest.mark.slow
def test_a_fresh_install_predicts_with_no_mnist_anywhere(tmp_path):
    """pip install . into a new virtual environment (its own site-packages; the build tools
    from this one), then lenet-gpu predict on the sample image from an unrelated directory."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", str(REPO)], check=True, cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("LENET_GPU_DATA", "PYTHONPATH")}
    env["HOME"] = str(tmp_path)              # no cached MNIST either
    out = subprocess.run([str(venv / "bin" / "lenet-gpu"), "predict", str(SAMPLE), "--json",
                          "--backend", "numpy"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result[0]["class"] == 7
    where = subprocess.run([str(py), "-c", "import lenet_gpu; print(lenet_gpu.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True).stdout
    assert str(venv) in where, "the installed package, not the source tree"
