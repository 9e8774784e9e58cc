/*
 * fuzzlib.c - the shared library of the reader fuzzers' fixture: built
 * with --sbcc and linked into fuzzprof (a raw profile file then holds two
 * images), and built with trace-pc and loaded into the test process for
 * the .sancov seeds.
 */
int
fzlib_scale(int x)
{
	return x > 10 ? x / 2 : x * 3;
}
