/* hello.c - compile/link smoke fixture: prints, and exits with argc + 40. */
#include <stdio.h>

__attribute__((noinline)) int
hello_branch(int n)
{
	if (n > 2)
		return n * 2;
	return n + 40;
}

int
main(int argc, char **argv)
{
	(void)argv;
	printf("hello %d\n", hello_branch(argc));
	return argc + 40;
}
