"""Task generators: pure NumPy, no JAX. A batch for (seed, split, step) is a pure function of them."""
