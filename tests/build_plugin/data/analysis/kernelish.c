/* The kernel's way of opting out (include/linux/compiler-clang.h,
 * compiler_types.h, asm/idtentry.h): the attribute exists only when the TU
 * is compiled with coverage, and reaches functions through noinstr and
 * through a macro that writes the whole declaration. */
#if __has_feature(coverage_sanitizer)
#define __no_sanitize_coverage __attribute__((no_sanitize("coverage")))
#else
#define __no_sanitize_coverage
#endif

#define noinstr __attribute__((__noinline__)) __attribute__((__section__(".noinstr.text"))) \
	__no_sanitize_coverage

#define DEFINE_IDTENTRY(func) \
	noinstr void func(unsigned long *regs)

static unsigned long counter;

noinstr void irqentry_like(void) { counter++; }

DEFINE_IDTENTRY(exc_like)
{
	counter += *regs;
}

void instrumented_like(void) { counter--; }
