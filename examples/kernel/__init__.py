"""The kernel examples: kmodules (kcov.ko and minix.ko builds), minixcov
(the guest-side tracer) and demo_kernel (make demo-kernel)."""
