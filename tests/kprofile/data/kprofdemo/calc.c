// SPDX-License-Identifier: GPL-2.0
/* calc.c - kprofdemo's calculations: a few functions and branches whose
 * execution counts the test predicts from the workload it sends. */
#include "kprofdemo.h"

long kprofdemo_classify(long v)
{
	if (v < 0)
		return -1;
	if (v == 0)
		return 0;
	if (v < 100)
		return 1;
	return 2;
}

long kprofdemo_collatz(long v)
{
	long steps = 0;

	while (v > 1) {
		if (v & 1)
			v = 3 * v + 1;
		else
			v /= 2;
		steps++;
	}
	return steps;
}

/* Only the "unused" command reaches this; the workload never sends it. */
long kprofdemo_unused(long v)
{
	long r = 0;

	while (v-- > 0)
		r += v * v;
	return r;
}
