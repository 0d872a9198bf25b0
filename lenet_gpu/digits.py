"""Stylized 7x12 digit bitmaps: the fixed centres of LeNet-5's RBF output units.

The paper (LeCun et al. 1998, section II-B, Fig. 3) sets each output unit's 84 weights to +1 or -1
from a 7 x 12 drawing of its digit, so that F6 learns to draw the digit and confusable digits have
nearby centres. These drawings are our own: '#' is +1, '.' is -1, 12 rows of 7 columns, flattened
row by row into the 84 weights (F6's units in the same order).
"""
import numpy as np

ROWS, COLS = 12, 7

BITMAPS = {
    0: """
.......
..###..
.#...#.
#.....#
#.....#
#.....#
#.....#
#.....#
.#...#.
..###..
.......
.......""",
    1: """
.......
...#...
..##...
.#.#...
...#...
...#...
...#...
...#...
...#...
.#####.
.......
.......""",
    2: """
.......
..###..
.#...#.
.....#.
.....#.
....#..
...#...
..#....
.#.....
.#####.
.......
.......""",
    3: """
.......
.####..
.....#.
.....#.
.....#.
..###..
.....#.
.....#.
.....#.
.####..
.......
.......""",
    4: """
.......
....#..
...##..
..#.#..
.#..#..
#...#..
######.
....#..
....#..
....#..
.......
.......""",
    5: """
.......
.#####.
.#.....
.#.....
.####..
.....#.
.....#.
.....#.
.#...#.
..###..
.......
.......""",
    6: """
.......
...##..
..#....
.#.....
.#.....
.####..
.#...#.
.#...#.
.#...#.
..###..
.......
.......""",
    7: """
.......
######.
.....#.
....#..
....#..
...#...
...#...
..#....
..#....
..#....
.......
.......""",
    8: """
.......
..###..
.#...#.
.#...#.
..###..
.#...#.
.#...#.
.#...#.
.#...#.
..###..
.......
.......""",
    9: """
.......
..###..
.#...#.
.#...#.
.#...#.
..####.
.....#.
.....#.
....#..
..##...
.......
.......""",
}


def bitmap(digit):
    """(12, 7) array of +1 ('#') and -1 ('.') for one digit."""
    rows = BITMAPS[digit].strip().splitlines()
    if len(rows) != ROWS or any(len(r) != COLS or set(r) - set("#.") for r in rows):
        raise ValueError(f"bitmap of digit {digit} must be {ROWS} rows of {COLS} '#'/'.' characters")
    return np.array([[1.0 if ch == "#" else -1.0 for ch in r] for r in rows])


def rbf_centres(dtype=np.float64):
    """(10, 84): row i is digit i's bitmap, flattened row-major, entries +-1."""
    return np.stack([bitmap(d).reshape(-1) for d in range(10)]).astype(dtype)
