/*
 * kcov/noinstr.h - the project's "never instrument this" attributes.
 *
 * One header for the engine, the coverage callbacks, both platform glues
 * and the profile runtime, and (through kcovrt.h) for users' code.
 *
 * KCOV_NO_COVERAGE keeps a function out of SanitizerCoverage
 * instrumentation, spelled the way the compiler at hand honours it: clang
 * (13+) knows no_sanitize("coverage") and ignores no_sanitize_coverage, gcc
 * (12+) the reverse.  Older compilers know neither; `kcov-build --analyze`
 * finds the macro by name with libclang and excludes the function (clang) or
 * its file (gcc) instead.  Users mark any function the coverage callbacks
 * can reach, or it will recurse.  It is the only macro here meant for users'
 * code: it changes nothing but coverage.
 *
 * KCOV_NOINSTR is what every function of the runtime carries that can run
 * while recording or while a profile is written: no coverage callback (it
 * would recurse into the callbacks), no -finstrument-functions hook (the
 * kernel's notrace), no profile counter (a counter inside the profile
 * runtime would change the profile it writes) and no sanitizer check (a
 * sanitizer report from inside the callbacks would recurse through them).
 * The builds also compile the whole runtime without coverage, profiling and
 * sanitizer flags (CMakeLists.txt, linux/Kbuild); the attributes are the
 * second line of defence when a user's CFLAGS leak in.
 *
 * KCOV_PUBLIC is KCOV_NOINSTR for an entry point exported from libkcovrt,
 * which is otherwise built with -fvisibility=hidden.
 *
 * Freestanding: no includes, so the kernel module can use it as it is.
 */
#ifndef KCOV_NOINSTR_H
#define KCOV_NOINSTR_H

#if defined(__clang__) && __clang_major__ >= 13
#define KCOV_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#elif !defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 12
#define KCOV_NO_COVERAGE __attribute__((no_sanitize_coverage))
#else
#define KCOV_NO_COVERAGE
#endif

#if defined(__has_attribute)
#if __has_attribute(no_profile_instrument_function)
#define KCOV_NO_PROFILE __attribute__((no_profile_instrument_function))
#endif
#endif
#ifndef KCOV_NO_PROFILE
#define KCOV_NO_PROFILE
#endif

#define KCOV_NOINSTR                                \
	KCOV_NO_COVERAGE KCOV_NO_PROFILE            \
	    __attribute__((no_instrument_function)) \
	    __attribute__((no_sanitize("address", "thread", "undefined")))

#define KCOV_PUBLIC KCOV_NOINSTR __attribute__((visibility("default")))

#endif /* KCOV_NOINSTR_H */
