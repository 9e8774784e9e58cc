/*
 * rec.c - the instrumented library the model-based test calls into.
 *
 * rec() is built with -fsanitize-coverage=trace-pc,trace-cmp and has no
 * branch, so one call records exactly one PC in PC mode and one comparison
 * (a constant 4-byte compare) in CMP mode.  repeat() is kept out of the
 * instrumentation and calls rec() n times, so a test can ask for an exact
 * number of records with one ctypes call.
 */
#include <kcovrt.h>

#define EXPORT __attribute__((visibility("default"), noinline))

EXPORT int
rec(int x)
{
	return x == 0x4b43;
}

EXPORT KCOV_NO_COVERAGE int
repeat(int n)
{
	int i, acc = 0;

	for (i = 0; i < n; i++)
		acc += rec(i);
	return acc;
}
