/*
 * noinstr.h - the profile runtime's "never instrument this" attribute.
 *
 * The serialiser must not count, trace or sanitise itself: a counter in the
 * runtime would change the profile it is writing, and a coverage callback
 * would recurse into kcov.  The build also compiles these files without any
 * instrumentation flags (CMakeLists.txt); this is the second line of
 * defence when a user's CFLAGS leak in.
 */
#ifndef KCOVPROF_NOINSTR_H
#define KCOVPROF_NOINSTR_H

#if defined(__clang__)
#define KCOVPROF_NOINSTR                                                 \
	__attribute__((no_sanitize("coverage"), no_instrument_function,      \
	    no_profile_instrument_function))
#elif defined(__GNUC__) && __GNUC__ >= 12
#define KCOVPROF_NOINSTR                                                 \
	__attribute__((no_sanitize_coverage, no_instrument_function,         \
	    no_profile_instrument_function))
#else
#define KCOVPROF_NOINSTR __attribute__((no_instrument_function))
#endif

/* The public entry points (kcovprof.h): exported from libkcovrt, which is
 * otherwise built with -fvisibility=hidden. */
#define KCOVPROF_PUBLIC KCOVPROF_NOINSTR __attribute__((visibility("default")))

#endif /* KCOVPROF_NOINSTR_H */
