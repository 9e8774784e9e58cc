/* Opt-outs that clang itself does not honour: only the generated
 * ignorelist keeps SanitizerCoverage out of the skip_* functions.  keep_*
 * must stay instrumented.  Every function has a branch, so an instrumented
 * one has several callback calls. */
#define KCOV_NO_COVERAGE   /* empty: the ignorelist does the work */
#define MY_NOCOV           /* given with --annotation MY_NOCOV */

int keep_a(int x) { return x > 3 ? x * 2 : x + 1; }

KCOV_NO_COVERAGE int skip_project(int x) { return x > 3 ? x * 2 : x + 1; }

__attribute__((no_sanitize_coverage)) int skip_gcc_spelling(int x) { return x > 3 ? x * 2 : x + 1; }

__attribute__((annotate("kcov_no_coverage"))) int skip_annotate(int x) { return x > 3 ? x * 2 : x + 1; }

MY_NOCOV int skip_custom(int x) { return x > 3 ? x * 2 : x + 1; }

int user_skip_pattern(int x) { return x > 3 ? x * 2 : x + 1; }

static int keep_static(int x) { return x > 5 ? x - 1 : x + 7; }

int keep_b(int x) { return keep_static(x) > 3 ? x * 2 : x + 1; }
