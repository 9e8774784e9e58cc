/* Built with every SanitizerCoverage mode: it must link and run. */
#include <stdio.h>

static int
apply(int (*f)(int), int v)
{
	return f(v);
}

static int
twice(int v)
{
	return 2 * v;
}

int
main(int argc, char **argv)
{
	int a[8] = { 0 };
	volatile int d = argc + 1;

	(void)argv;
	a[argc & 7] = apply(twice, argc) / d;
	printf("ok %d\n", a[argc & 7]);
	return 0;
}
