/* The same project with the runtime's callees opted out. */
#define KCOV_NO_COVERAGE __attribute__((no_sanitize("coverage")))
int counter;

KCOV_NO_COVERAGE void helper(void) { if (counter++ > 3) counter = 0; }

KCOV_NO_COVERAGE void other_entry(unsigned long x) { counter += (int)x; }

void not_a_callback(void) { counter--; }
