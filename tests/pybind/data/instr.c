/*
 * instr.c - the instrumented library the Python API tests call into.
 *
 * Built as a shared object with -fsanitize-coverage=trace-pc,trace-cmp and
 * linked against libkcovrt, so each call records into whichever hosted
 * descriptor the calling thread has enabled.  Every function is noinline
 * and its comparisons use volatile-free plain arguments, so the records
 * depend only on the arguments.
 */
#include <stdint.h>

#define EXPORT __attribute__((visibility("default"), noinline))

static volatile int sink;

/* Some branches and a loop: a few PCs per iteration. */
EXPORT int
work(int n)
{
	int i, acc = 0;

	for (i = 0; i < n; i++) {
		if (i & 1)
			acc += i;
		else
			acc ^= i;
	}
	sink = acc;
	return acc;
}

/* One comparison against a constant: const_cmp4(0x1234abcd, x). */
EXPORT int
cmp_const(int x)
{
	return x == 0x1234abcd;
}

/* One comparison of two variables: cmp8(a, b). */
EXPORT int
cmp_vars(int64_t a, int64_t b)
{
	return a < b;
}

static __attribute__((noinline)) void
touch(int v)
{
	sink = v;
}

/*
 * A sparse switch with a negative case, so neither compiler turns it into
 * a jump table or a range check, and the case values show how each
 * compiler extends them.
 */
EXPORT int
sw(int v)
{
	switch (v) {
	case -2:
		touch(1);
		break;
	case 5:
		touch(2);
		break;
	case 100:
		touch(3);
		break;
	case 7000:
		touch(4);
		break;
	default:
		return 0;
	}
	return 1;
}
