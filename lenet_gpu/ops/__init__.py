"""Stateless maths, one op per file, forward and backward side by side.

Every op takes and returns arrays of one backend (NumPy or CuPy) and picks its CPU or GPU
path from the array type. Forward functions return `(output, cache)`; backward functions take
`(dy, cache)` and return the gradients, so a layer never needs to know which backend ran.
"""
