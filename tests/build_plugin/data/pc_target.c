/*
 * pc_target.c - the instrumented half of the PC fixture.  A few branches
 * and a loop, so there is more than one basic block to record; noinline and
 * no calls to other instrumented code, so every PC lands in pc_target.
 */
__attribute__((noinline)) int
pc_target(int n)
{
	int i, acc = 0;

	for (i = 0; i < n; i++) {
		if (i % 3 == 0)
			acc += i;
		else
			acc ^= i << 1;
	}
	if (acc > 100)
		return acc - 100;
	return acc;
}
