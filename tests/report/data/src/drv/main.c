/* Scenario source for the report format tests (tests/report/formats_fixtures.py). */
#include "util.h"

static int state;

int handle(int cmd)
{
	int v = clamp(cmd, 0, 10);

	if (v > 5) state = v; else state = 0;
	return state;
}

void cleanup(void)
{
	state = 0;
}

int unused_fn(void)
{
	return 42;
}

int main(int argc, char **argv)
{
	(void)argv;
	return handle(argc) & 0x7f;
}
