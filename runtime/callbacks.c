/*
 * callbacks.c - every SanitizerCoverage entry point the compilers emit.
 *
 * Each is a shim: take the caller's PC (the return address, as FreeBSD and
 * Linux record it), find the calling thread's descriptor, and hand both to
 * the engine.  With no descriptor enabled on the thread the whole callback
 * is one thread-local load, a test and a return.
 *
 * trace-pc and trace-cmp feed kcov.  Every other SanitizerCoverage callback
 * gets a weak, harmless default, so any object built with any coverage flags
 * links against this runtime (spec llvm-profile-sancov.md §3.1).
 *
 * Nothing here may be instrumented: see kcov/noinstr.h and CMakeLists.txt.
 */
#include <stdint.h>

#include "engine.h"
#include "kcov_td.h"

#define KCOV_WEAK   KCOV_PUBLIC __attribute__((weak))
#define KCOV_RET_IP ((uint64_t)(uintptr_t)__builtin_return_address(0))

#define KCOV_CMP(type, a, b)                                               \
	do {                                                               \
		struct kcov_desc *d_ = kcov_self_desc();                   \
		if (kcov_unlikely(d_ != NULL))                             \
			kcov_trace_cmp(d_, (type), (a), (b), KCOV_RET_IP); \
	} while (0)

#define T_SIZE(n) KCOV_CMP_SIZE_BITS(n)
#define T_CONST   KCOV_CMP_CONST_BIT

KCOV_PUBLIC void
__sanitizer_cov_trace_pc(void)
{
	struct kcov_desc *d = kcov_self_desc();

	if (kcov_unlikely(d != NULL))
		kcov_trace_pc(d, KCOV_RET_IP);
}

KCOV_PUBLIC void
__sanitizer_cov_trace_cmp1(uint8_t a, uint8_t b)
{
	KCOV_CMP(T_SIZE(0), a, b);
}

KCOV_PUBLIC void
__sanitizer_cov_trace_cmp2(uint16_t a, uint16_t b)
{
	KCOV_CMP(T_SIZE(1), a, b);
}

KCOV_PUBLIC void
__sanitizer_cov_trace_cmp4(uint32_t a, uint32_t b)
{
	KCOV_CMP(T_SIZE(2), a, b);
}

KCOV_PUBLIC void
__sanitizer_cov_trace_cmp8(uint64_t a, uint64_t b)
{
	KCOV_CMP(T_SIZE(3), a, b);
}

/* The compilers pass the constant first (arg1), the other operand second. */
KCOV_PUBLIC void
__sanitizer_cov_trace_const_cmp1(uint8_t a, uint8_t b)
{
	KCOV_CMP(T_SIZE(0) | T_CONST, a, b);
}

KCOV_PUBLIC void
__sanitizer_cov_trace_const_cmp2(uint16_t a, uint16_t b)
{
	KCOV_CMP(T_SIZE(1) | T_CONST, a, b);
}

KCOV_PUBLIC void
__sanitizer_cov_trace_const_cmp4(uint32_t a, uint32_t b)
{
	KCOV_CMP(T_SIZE(2) | T_CONST, a, b);
}

KCOV_PUBLIC void
__sanitizer_cov_trace_const_cmp8(uint64_t a, uint64_t b)
{
	KCOV_CMP(T_SIZE(3) | T_CONST, a, b);
}

/*
 * Not in the kernel build: the kernel compiles without SSE, where float
 * arguments cannot be received; linux/fpcmp.c has these two, built with SSE.
 */
#ifndef __KERNEL__
/*
 * GCC also traces floating-point compares (spec §3.4); no kernel does.  They
 * are recorded as comparisons of the operands' bit patterns, 4 bytes for
 * float and 8 for double, so every record keeps a valid type (<= 7) that
 * syzkaller-style consumers accept.
 */
KCOV_PUBLIC void
__sanitizer_cov_trace_cmpf(float a, float b)
{
	union {
		float f;
		uint32_t u;
	} x = { a }, y = { b };

	KCOV_CMP(T_SIZE(2), x.u, y.u);
}

KCOV_PUBLIC void
__sanitizer_cov_trace_cmpd(double a, double b)
{
	union {
		double f;
		uint64_t u;
	} x = { a }, y = { b };

	KCOV_CMP(T_SIZE(3), x.u, y.u);
}
#endif /* !__KERNEL__ */

KCOV_PUBLIC void
__sanitizer_cov_trace_switch(uint64_t val, uint64_t *cases)
{
	struct kcov_desc *d = kcov_self_desc();

	if (kcov_unlikely(d != NULL))
		kcov_trace_switch(d, val, cases, KCOV_RET_IP);
}

/* --- Harmless defaults for the other SanitizerCoverage modes ------------- */

/*
 * Guards are numbered from 1 the first time a module's range is seen, as
 * sanitizer_common does; a repeated call with the same range returns early.
 */
KCOV_WEAK void
__sanitizer_cov_trace_pc_guard_init(uint32_t *start, uint32_t *stop)
{
	static uint32_t next;
	uint32_t *p;

	if (start == stop || *start != 0)
		return;
	for (p = start; p < stop; p++)
		*p = __atomic_add_fetch(&next, 1, __ATOMIC_RELAXED);
}

/* One line per no-op reads as the list it is. */
/* clang-format off */
KCOV_WEAK void __sanitizer_cov_trace_pc_guard(uint32_t *guard) { (void)guard; }
KCOV_WEAK void __sanitizer_cov_trace_pc_indir(uintptr_t callee) { (void)callee; }
KCOV_WEAK void __sanitizer_cov_8bit_counters_init(char *s, char *e) { (void)s; (void)e; }
KCOV_WEAK void __sanitizer_cov_bool_flag_init(char *s, char *e) { (void)s; (void)e; }
KCOV_WEAK void __sanitizer_cov_pcs_init(const uintptr_t *b, const uintptr_t *e) { (void)b; (void)e; }
KCOV_WEAK void __sanitizer_cov_cfs_init(const uintptr_t *b, const uintptr_t *e) { (void)b; (void)e; }
KCOV_WEAK void __sanitizer_cov_trace_div4(uint32_t v) { (void)v; }
KCOV_WEAK void __sanitizer_cov_trace_div8(uint64_t v) { (void)v; }
KCOV_WEAK void __sanitizer_cov_trace_gep(uintptr_t idx) { (void)idx; }

#define KCOV_MEM_CB(n)                                                    \
	KCOV_WEAK void __sanitizer_cov_load##n(void *p) { (void)p; }        \
	KCOV_WEAK void __sanitizer_cov_store##n(void *p) { (void)p; }
KCOV_MEM_CB(1)
KCOV_MEM_CB(2)
KCOV_MEM_CB(4)
KCOV_MEM_CB(8)
KCOV_MEM_CB(16)
/* clang-format on */
