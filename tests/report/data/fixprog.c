/*
 * fixprog.c - the instrumented part of the report fixture's PIE.
 * "digits" input reaches prog_digits (and its inlined helper clamp_digit),
 * "letters" input reaches prog_letters; both reach lib_checksum.
 */
#include <kcovrt.h>

#include "fixture.h"

/* Inlined into prog_digits; its branch calls out, so it keeps a block
 * (and a coverage call) of its own. */
static inline __attribute__((always_inline)) int
clamp_digit(int d)
{
	if (d > 9) {
		lib_note_overflow(d);	/* MARK: clamp_big */
		return 9;
	}
	return d;
}

int
prog_digits(const char *s)
{
	int sum = 0;

	for (; *s; s++)
		sum += clamp_digit(*s - '0');	/* MARK: digits_call */
	return sum;
}

int
prog_letters(const char *s)
{
	int n = 0;

	for (; *s; s++) {
		if (*s >= 'a' && *s <= 'z')
			n += lib_checksum(s);	/* MARK: letters_lower */
	}
	return n;
}

int
prog_unreached(int x)
{
	if (x > 3)
		return x * lib_unreached(x);	/* MARK: unreached_body */
	return -x;
}

KCOV_NO_COVERAGE int
prog_uninstrumented(int x)
{
	return x + 1;	/* MARK: uninstrumented_body */
}

int
prog_run(const char *kind, const char *arg)
{
	if (kind[0] == 'd')
		return prog_digits(arg) + lib_checksum(arg);	/* MARK: run_digits */
	return prog_letters(arg) + lib_checksum(arg);	/* MARK: run_letters */
}
