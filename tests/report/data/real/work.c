/*
 * work.c - the real-program scenario of the format tests
 * (tests/report/test_formats_real.py): built with clang-19 -g -O2
 * -fsanitize-coverage=trace-pc; main.c (not instrumented) records it.
 */
#include "work.h"

/* volatile: the branches below stay branches (and coverage points). */
static volatile int clamped, bangs;

/* Inlined into count_digits: its lines are reached through inline frames. */
static inline __attribute__((always_inline)) int
clamp(int v, int hi)
{
	if (v > hi) {
		clamped++;
		return hi;
	}
	return v;
}

int
count_digits(const char *s)
{
	int n = 0;

	for (; *s; s++)
		if (*s >= '0' && *s <= '9')
			n += clamp(*s - '0', 5);
	return n;
}

int
count_upper(const char *s)
{
	int n = 0;

	for (; *s; s++) {
		if (*s >= 'A' && *s <= 'Z') n++; else if (*s == '!') bangs++;
	}
	return n;
}

int
never_called(int x)
{
	if (x > 2)
		return x * 3;
	return x;
}

/* No coverage callbacks at all: listed from the inventory only. */
__attribute__((no_sanitize("coverage"))) int
not_instrumented(int x)
{
	return x + 1;
}

int
work(const char *kind, const char *arg)
{
	if (kind[0] == 'd')
		return count_digits(arg);
	return count_upper(arg);
}
