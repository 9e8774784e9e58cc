/* Defines what the runtime calls: helper() instrumented, so it recurses. */
int counter;

void helper(void) { if (counter++ > 3) counter = 0; }

void other_entry(unsigned long x) { counter += (int)x; }

void not_a_callback(void) { counter--; }
