"""Examples, importable from the tests as examples.kernel.kmodules etc."""
