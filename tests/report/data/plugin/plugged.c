/*
 * plugged.c - the instrumented library of the pytest plugin tests
 * (test_plugin.py): each test of plugged_tests.py reaches its own
 * functions, so per-test attribution can be checked line by line.
 * Comments "MARK: name" name source lines; the tests look them up.
 */
static volatile int sink;

int
shared(int x)
{
	sink += x;	/* MARK: shared_body */
	return sink;
}

int
alpha(int x)
{
	if (x > 0)
		sink += x;	/* MARK: alpha_pos */
	else
		sink -= x;	/* MARK: alpha_neg */
	return sink;
}

int
beta(int x)
{
	sink ^= x;	/* MARK: beta_body */
	return sink;
}

int
gamma_(int x)
{
	sink |= x;	/* MARK: gamma_body */
	return shared(x);
}

int
fixture_up(void)
{
	sink = 1;	/* MARK: fixture_up */
	return sink;
}

int
fixture_down(void)
{
	sink = 0;	/* MARK: fixture_down */
	return sink;
}

int
never(int x)
{
	sink = x;	/* MARK: never_body */
	return sink;
}
