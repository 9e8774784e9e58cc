/*
 * main.c - records work.c's coverage callbacks the way kcov does (one
 * return address per call), built WITHOUT coverage:
 *
 *	prog KIND ARG MAPS
 *
 * runs work(KIND, ARG), copies /proc/self/maps to MAPS and prints the
 * recorded PCs, one "0x..." per line.  Recording in-process keeps the
 * binary free of the kcov runtime, so its layout (and the golden files)
 * depend on work.c and the toolchain only.
 */
#include <stdint.h>
#include <stdio.h>

#include "work.h"

#define ENTRIES (1 << 16)

static uintptr_t pcs[ENTRIES];
static unsigned long npcs;
static int tracing;

void __sanitizer_cov_trace_pc(void);

void
__sanitizer_cov_trace_pc(void)
{
	if (tracing && npcs < ENTRIES)
		pcs[npcs++] = (uintptr_t)__builtin_return_address(0);
}

int
main(int argc, char **argv)
{
	FILE *in, *out;
	unsigned long i;
	int c;

	if (argc != 4) {
		fprintf(stderr, "usage: prog KIND ARG MAPS\n");
		return 64;
	}
	tracing = 1;
	(void)work(argv[1], argv[2]);
	tracing = 0;
	in = fopen("/proc/self/maps", "r");
	out = fopen(argv[3], "w");
	if (in == NULL || out == NULL)
		return 1;
	while ((c = getc(in)) != EOF)
		putc(c, out);
	fclose(in);
	fclose(out);
	for (i = 0; i < npcs; i++)
		printf("0x%lx\n", (unsigned long)pcs[i]);
	return 0;
}
