/*
 * kern_target.c - instrumented stand-in for kernel code (see kern_target.h).
 * Built with -fsanitize-coverage=trace-pc,trace-cmp; nothing else is.
 */
#include "kern_target.h"

#define	KERN_TEXT	__attribute__((section("kern_text"), noinline))

/* volatile so the compiler cannot fold the compares away. */
volatile uint64_t kern_state = 7;

static KERN_TEXT int
kern_helper(uint64_t v)
{
	if (v > kern_state)
		return 1;
	return 0;
}

KERN_TEXT int
kern_syscall(int arg)
{
	int i, r = 0;

	if ((unsigned)arg == KERN_MAGIC)
		r += 100;
	switch (arg & 7) {
	case 1:
		r += 1;
		break;
	case 3:
		r += 3;
		break;
	case 6:
		r += 6;
		break;
	default:
		break;
	}
	for (i = 0; i < (arg & 3) + 1; i++)
		r += kern_helper((uint64_t)i + (uint64_t)arg);
	kern_state = kern_state + (uint64_t)r;
	return r;
}
