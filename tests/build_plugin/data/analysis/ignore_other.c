/* Excluded as a whole by a src: rule. */
int skip_by_file(int x) { return x > 3 ? x * 2 : x + 1; }
