/* fixlib.c - the instrumented shared library of the report fixture. */
#include "fixture.h"

/* Volatile stores keep the two branches apart (no select at -O2). */
static volatile int overflows, odds, evens;

/*
 * gcc ends this with `jmp __sanitizer_cov_trace_pc`: the join block's
 * coverage call is the function's last action, so it is a tail call and
 * the PC recorded is the return address of the call in lib_checksum.
 */
static __attribute__((noinline)) void
store_big(volatile int *p, int v)
{
	if (v > 3)
		*p = v;	/* MARK: store_big */
}

int
lib_checksum(const char *s)
{
	unsigned h = 0;

	store_big(&odds, (int)*s);	/* MARK: checksum_store */
	for (; *s; s++) {
		if (*s & 1) {
			odds++; h = h * 31 + (unsigned char)*s;	/* MARK: lib_odd */
		} else {
			evens++; h ^= (unsigned char)*s;	/* MARK: lib_even */
		}
	}
	return (int)(h & 0x7fffffff);
}

void
lib_note_overflow(int d)
{
	overflows += d;	/* MARK: lib_overflow */
}

int
lib_unreached(int x)
{
	if (x > 10) {
		overflows = x; return x - 10;	/* MARK: lib_unreached_body */
	}
	return x;
}
