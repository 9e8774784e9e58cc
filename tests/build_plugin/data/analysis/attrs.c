/* One function per way of opting out of coverage, and plain ones around
 * them.  Names say what the analysis must report: nocov_* carry an opt-out,
 * plain_* do not.  Line numbers matter to test_analysis.py (it reads them
 * from this file, so edit freely). */
#include <stddef.h>
#include "attrs.h"

#define KCOV_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#define MY_PROJECT_NOCOV /* an annotation that expands to nothing */

int plain_first(int x) { return x + header_inline(x); }

__attribute__((no_sanitize("coverage"))) int nocov_clang_spelling(int x) { return x; }

int __attribute__((__no_sanitize__("address", "coverage"))) nocov_list_spelling(int x) { return x; }

__attribute__((no_sanitize_coverage)) int nocov_gcc_spelling(int x) { return x; }

int nocov_disable(int x) __attribute__((disable_sanitizer_instrumentation));
int nocov_disable(int x) { return x - 1; }

__attribute__((annotate("kcov_no_coverage"))) int nocov_annotate(int x) { return x; }

__nocov int nocov_macro(int x) { return x; }

NOCOV_TWICE int nocov_macro_chain(int x) { return x; }

KCOV_NO_COVERAGE int nocov_project(int x) { return x; }

MY_PROJECT_NOCOV int nocov_custom(int x) { return x; }

__attribute__((no_sanitize("address"))) int plain_other_sanitizer(int x) { return x; }

static int
plain_multiline(int a,
		int b)
{
	if (a > b)
		return a;
	return b;
}

int plain_last(size_t n)
{
	return plain_multiline((int)n, 3);
}
