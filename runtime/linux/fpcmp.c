// SPDX-License-Identifier: GPL-2.0
/*
 * fpcmp.c - GCC's float and double compare callbacks for the kernel.
 *
 * Their operands arrive in SSE registers, which the kernel's -mno-sse build
 * cannot even name, so this file alone is built with SSE (Kbuild), like the
 * kernel's own FPU code.  A caller can only be instrumented code that
 * compares floats, i.e. code inside kernel_fpu_begin()/end(), where SSE is
 * usable.  The bit patterns go on to a non-SSE function at once (same
 * recording as the hosted callbacks.c: 4- and 8-byte comparisons).
 */
#include <linux/export.h>
#include <linux/types.h>

#include "engine.h"

void kcov_record_cmp(uint64_t type, uint64_t a, uint64_t b, uint64_t pc);
void __sanitizer_cov_trace_cmpf(float a, float b);
void __sanitizer_cov_trace_cmpd(double a, double b);

KCOV_NOINSTR void
__sanitizer_cov_trace_cmpf(float a, float b)
{
	union {
		float f;
		u32 u;
	} x = { a }, y = { b };

	kcov_record_cmp(KCOV_CMP_SIZE_BITS(2), x.u, y.u,
	    (uint64_t)(uintptr_t)__builtin_return_address(0));
}
EXPORT_SYMBOL(__sanitizer_cov_trace_cmpf);

KCOV_NOINSTR void
__sanitizer_cov_trace_cmpd(double a, double b)
{
	union {
		double f;
		u64 u;
	} x = { a }, y = { b };

	kcov_record_cmp(KCOV_CMP_SIZE_BITS(3), x.u, y.u,
	    (uint64_t)(uintptr_t)__builtin_return_address(0));
}
EXPORT_SYMBOL(__sanitizer_cov_trace_cmpd);
