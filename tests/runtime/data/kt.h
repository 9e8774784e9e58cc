/*
 * kt.h - a minimal ATF-like harness for the kcov clients in this directory.
 *
 * Every client is a table of named cases; "./client CASE" runs one and
 * prints "PASS CASE" on success, "./client" lists them in registration
 * order.  A failed REQUIRE prints "FAIL CASE: file:line: expr" with errno
 * and exits 1 from whatever thread it is in, so a case cannot pass by
 * accident.  Cases that only have to "not panic" still end with PASS, which
 * is printed before the process exits with its descriptors open.
 */
#ifndef KT_H
#define KT_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kt_case {
	const char	*name;
	void		(*fn)(void);
};

static const char *kt_current = "?";

static void __attribute__((noreturn))
kt_fail(const char *file, int line, const char *expr, int err)
{
	printf("FAIL %s: %s:%d: %s (errno %d: %s)\n", kt_current, file, line,
	    expr, err, strerror(err));
	fflush(stdout);
	_exit(1);
}

#define	REQUIRE(cond) do {						\
	if (!(cond))							\
		kt_fail(__FILE__, __LINE__, #cond, errno);		\
} while (0)

#define	REQUIRE_MSG(cond, msg) do {					\
	if (!(cond))							\
		kt_fail(__FILE__, __LINE__, #cond ": " msg, errno);	\
} while (0)

/* `call` must fail (-1, or MAP_FAILED via the caller's test) with `err`. */
#define	REQUIRE_ERRNO(err, cond) do {					\
	errno = 0;							\
	if (!(cond))							\
		kt_fail(__FILE__, __LINE__, #cond, errno);		\
	if (errno != (err))						\
		kt_fail(__FILE__, __LINE__,				\
		    #cond " failed with the wrong errno, wanted " #err,	\
		    errno);						\
} while (0)

#define	KT_CASE(name)	{ #name, name }

static int
kt_main(int argc, char **argv, const struct kt_case *cases, size_t n)
{
	size_t i;

	if (argc < 2) {
		for (i = 0; i < n; i++)
			printf("%s\n", cases[i].name);
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (strcmp(argv[1], cases[i].name) != 0)
			continue;
		kt_current = cases[i].name;
		/* A hang is a failure too; pytest reports the signal. */
		alarm(60);
		cases[i].fn();
		printf("PASS %s\n", cases[i].name);
		fflush(stdout);
		return 0;
	}
	fprintf(stderr, "usage: %s [case]: unknown case %s\n", argv[0],
	    argv[1]);
	return 64;	/* EX_USAGE */
}

#endif /* KT_H */
