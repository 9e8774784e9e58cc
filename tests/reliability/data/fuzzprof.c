/*
 * fuzzprof.c - a small program whose profiles seed the reader fuzzers
 * (tests/reliability/test_fuzz_readers.py): branches, a loop, an indirect
 * call and a memcpy of a run-time size, so that PGO builds record value
 * profiles too.  Linked against libfuzzlib.so when FUZZ_LIB is defined.
 */
#include <stdlib.h>
#include <string.h>

#ifdef FUZZ_LIB
int fzlib_scale(int x);
#else
static int fzlib_scale(int x) { return x + 1; }
#endif

static int twice(int x) { return 2 * x; }
static int negate(int x) { return -x; }

int
main(int argc, char **argv)
{
	int (*volatile op)(int) = argc > 2 ? negate : twice;
	char buf[64], src[64] = "abcdefghijklmnopqrstuvwxyz";
	int i, n = argc > 1 ? atoi(argv[1]) : 3, sum = 0;

	for (i = 0; i < n; i++)
		sum += op(i) + fzlib_scale(i);
	memcpy(buf, src, (size_t)(n % 60) + 1);
	return (sum + buf[0]) & 1;
}
