/*
 * openbsd_kcov.c - OpenBSD's regress/sys/dev/kcov/kcov.c v1.18
 * (bsd-kcov.md §3.3), ported to run on the hosted kcov device under
 * "kcov-run --abi openbsd".
 *
 *	openbsd_kcov [-E] -m pc|cmp test
 *
 * Kept from the regress program: the context (one descriptor of 256<<10
 * entries, sized and mapped before the test), each test's coverage
 * expectation and check_coverage().  do_syscall() calls kern_syscall(), the
 * instrumented stand-in for the kernel.  On OpenBSD the ioctl code itself is
 * traced, so "state" has coverage after enable/disable alone; here only
 * kern_text records, so "state" calls do_syscall() while enabled.
 *
 * Left out: fdsend (SCM_RIGHTS of a hosted descriptor cannot be refused
 * from user space) and the remote tests (a process has no kernel tasks to
 * collect from).  "exec" checks only that the descriptor is reusable after
 * the child exits: coverage does not follow a process image across execve
 * on the hosted device.  "errno" is new: OpenBSD's errno for every refusal
 * (bsd-kcov.md §3.2).  On success the program prints "PASS test".
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/kcov.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kern_target.h"

struct context {
	int c_fd;
	int c_mode;
	unsigned long c_bufsize;
};

static int test_close(struct context *);
static int test_coverage(struct context *);
static int test_dying(struct context *);
static int test_errno(struct context *);
static int test_exec(struct context *);
static int test_fork(struct context *);
static int test_open(struct context *);
static int test_state(struct context *);

static int check_coverage(const unsigned long *, int, unsigned long, int);
static void do_syscall(void);
static void kcov_disable(int);
static void kcov_enable(int, int);
static int kcov_open(void);
static void usage(void) __attribute__((noreturn));

static const char *self;

#ifndef __OpenBSD__
/* glibc's <err.h> has no errc(3). */
static void __attribute__((noreturn))
errc(int eval, int code, const char *msg)
{
	errno = code;
	err(eval, "%s", msg);
}
#endif

int
main(int argc, char *argv[])
{
	struct {
		const char *name;
		int (*fn)(struct context *);
		int coverage;		/* test must produce coverage */
	} tests[] = {
		{ "close",		test_close,		0 },
		{ "coverage",		test_coverage,		1 },
		{ "dying",		test_dying,		-1 },
		{ "exec",		test_exec,		-1 },
		{ "fork",		test_fork,		1 },
		{ "open",		test_open,		0 },
		{ "state",		test_state,		1 },
		{ "errno",		test_errno,		0 },
		{ NULL,			NULL,			0 },
	};
	struct context ctx;
	unsigned long *cover;
	int c, i;
	int error = 0;
	int reexec = 0;

	self = argv[0];

	memset(&ctx, 0, sizeof(ctx));
	ctx.c_bufsize = 256 << 10;

	while ((c = getopt(argc, argv, "Elm:")) != -1)
		switch (c) {
		case 'E':
			reexec = 1;
			break;
		case 'l':
			for (i = 0; tests[i].name != NULL; i++)
				printf("%s\n", tests[i].name);
			return 0;
		case 'm':
			if (strcmp(optarg, "pc") == 0)
				ctx.c_mode = KCOV_MODE_TRACE_PC;
			else if (strcmp(optarg, "cmp") == 0)
				ctx.c_mode = KCOV_MODE_TRACE_CMP;
			else
				errx(1, "unknown mode %s", optarg);
			break;
		default:
			usage();
		}
	argc -= optind;
	argv += optind;

	if (reexec) {
		do_syscall();
		return 0;
	}

	if (ctx.c_mode == 0 || argc != 1)
		usage();
	for (i = 0; tests[i].name != NULL; i++)
		if (strcmp(argv[0], tests[i].name) == 0)
			break;
	if (tests[i].name == NULL)
		errx(1, "%s: no such test", argv[0]);
	alarm(60);

	ctx.c_fd = kcov_open();
	if (ioctl(ctx.c_fd, KIOSETBUFSIZE, &ctx.c_bufsize) == -1)
		err(1, "ioctl: KIOSETBUFSIZE");
	cover = mmap(NULL, ctx.c_bufsize * sizeof(unsigned long),
	    PROT_READ | PROT_WRITE, MAP_SHARED, ctx.c_fd, 0);
	if (cover == MAP_FAILED)
		err(1, "mmap");

	*cover = 0;
	error = tests[i].fn(&ctx);
	if (check_coverage(cover, ctx.c_mode, ctx.c_bufsize, tests[i].coverage))
		error = 1;

	if (munmap(cover, ctx.c_bufsize * sizeof(unsigned long)) == -1)
		err(1, "munmap");
	if (ctx.c_fd != -1) {
		if (close(ctx.c_fd) == -1)
			err(1, "close");
	}

	printf("%s %s\n", error ? "FAIL" : "PASS", tests[i].name);
	return error;
}

static void
usage(void)
{
	fprintf(stderr, "usage: kcov [-El] -m mode test\n");
	exit(1);
}

static void
do_syscall(void)
{
	kern_syscall(1);
}

static int
check_coverage(const unsigned long *cover, int mode, unsigned long maxsize,
    int nonzero)
{
	unsigned long arg1, arg2, exp, i, pc, type;
	int error = 0;

	if (nonzero == -1) {
		return 0;
	} else if (nonzero && cover[0] == 0) {
		warnx("coverage empty (count=0)");
		return 1;
	} else if (!nonzero && cover[0] != 0) {
		warnx("coverage not empty (count=%lu)", *cover);
		return 1;
	} else if (cover[0] >= maxsize) {
		warnx("coverage overflow (count=%lu, max=%lu)",
		    *cover, maxsize);
		return 1;
	}

	if (mode == KCOV_MODE_TRACE_CMP) {
		if (*cover * 4 >= maxsize) {
			warnx("coverage cmp overflow (count=%lu, max=%lu)",
			    *cover * 4, maxsize);
			return 1;
		}

		for (i = 0; i < cover[0]; i++) {
			type = cover[i * 4 + 1];
			arg1 = cover[i * 4 + 2];
			arg2 = cover[i * 4 + 3];
			pc = cover[i * 4 + 4];

			exp = type >> 1;
			if (exp <= 3 && kern_text_contains(pc))
				continue;

			warnx("coverage cmp invalid (i=%lu, exp=%lx, "
			    "const=%ld, arg1=%lu, arg2=%lu, pc=%p)\n",
			    i, exp, type & 0x1, arg1, arg2, (void *)pc);
			error = 1;
		}
	} else {
		/* Not in the regress test: every PC is in traced code. */
		for (i = 0; i < cover[0]; i++) {
			if (kern_text_contains(cover[i + 1]))
				continue;
			warnx("coverage pc outside kern_text (i=%lu, pc=%p)",
			    i, (void *)cover[i + 1]);
			error = 1;
		}
	}

	return error;
}

static int
kcov_open(void)
{
	int fd;

	fd = open("/dev/kcov", O_RDWR);
	if (fd == -1)
		err(1, "open: /dev/kcov");
	return fd;
}

static void
kcov_enable(int fd, int mode)
{
	if (ioctl(fd, KIOENABLE, &mode) == -1)
		err(1, "ioctl: KIOENABLE");
}

static void
kcov_disable(int fd)
{
	if (ioctl(fd, KIODISABLE) == -1)
		err(1, "ioctl: KIODISABLE");
}

/*
 * Close before mmap.
 */
static int
test_close(struct context *ctx)
{
	int fd;

	(void)ctx;
	fd = kcov_open();
	close(fd);
	return 0;
}

/*
 * Coverage of current thread.
 */
static int
test_coverage(struct context *ctx)
{
	kcov_enable(ctx->c_fd, ctx->c_mode);
	do_syscall();
	kcov_disable(ctx->c_fd);
	return 0;
}

static void *
closer(void *arg)
{
	struct context *ctx = arg;

	close(ctx->c_fd);
	return NULL;
}

/*
 * Close kcov descriptor in another thread during tracing.
 */
static int
test_dying(struct context *ctx)
{
	pthread_t th;
	int error;

	kcov_enable(ctx->c_fd, ctx->c_mode);

	if ((error = pthread_create(&th, NULL, closer, (void *)ctx)))
		errc(1, error, "pthread_create");
	if ((error = pthread_join(th, NULL)))
		errc(1, error, "pthread_join");

	error = 0;
	if (close(ctx->c_fd) == -1) {
		if (errno != EBADF)
			err(1, "close");
	} else {
		warnx("expected kcov descriptor to be closed");
		error = 1;
	}
	ctx->c_fd = -1;

	return error;
}

/*
 * Coverage of thread after exec.
 */
static int
test_exec(struct context *ctx)
{
	pid_t pid;
	int status;

	pid = fork();
	if (pid == -1)
		err(1, "fork");
	if (pid == 0) {
		kcov_enable(ctx->c_fd, ctx->c_mode);
		execlp(self, self, "-E", (char *)NULL);
		_exit(1);
	}

	if (waitpid(pid, &status, 0) == -1)
		err(1, "waitpid");
	if (WIFSIGNALED(status)) {
		warnx("terminated by signal (%d)", WTERMSIG(status));
		return 1;
	} else if (WEXITSTATUS(status) != 0) {
		warnx("non-zero exit (%d)", WEXITSTATUS(status));
		return 1;
	}

	/* Upon exit, the kcov descriptor must be reusable again. */
	kcov_enable(ctx->c_fd, ctx->c_mode);
	kcov_disable(ctx->c_fd);

	return 0;
}

/*
 * Coverage of thread after fork.
 */
static int
test_fork(struct context *ctx)
{
	pid_t pid;
	int status;

	pid = fork();
	if (pid == -1)
		err(1, "fork");
	if (pid == 0) {
		kcov_enable(ctx->c_fd, ctx->c_mode);
		do_syscall();
		_exit(0);
	}

	if (waitpid(pid, &status, 0) == -1)
		err(1, "waitpid");
	if (WIFSIGNALED(status)) {
		warnx("terminated by signal (%d)", WTERMSIG(status));
		return 1;
	} else if (WEXITSTATUS(status) != 0) {
		warnx("non-zero exit (%d)", WEXITSTATUS(status));
		return 1;
	}

	/* Upon exit, the kcov descriptor must be reusable again. */
	kcov_enable(ctx->c_fd, ctx->c_mode);
	kcov_disable(ctx->c_fd);

	return 0;
}

/*
 * Open /dev/kcov more than once.
 */
static int
test_open(struct context *ctx)
{
	unsigned long *cover;
	int fd;
	int error = 0;

	fd = kcov_open();
	if (ioctl(fd, KIOSETBUFSIZE, &ctx->c_bufsize) == -1)
		err(1, "ioctl: KIOSETBUFSIZE");
	cover = mmap(NULL, ctx->c_bufsize * sizeof(unsigned long),
	    PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (cover == MAP_FAILED)
		err(1, "mmap");

	kcov_enable(fd, ctx->c_mode);
	do_syscall();
	kcov_disable(fd);

	error = check_coverage(cover, ctx->c_mode, ctx->c_bufsize, 1);

	if (munmap(cover, ctx->c_bufsize * sizeof(unsigned long)))
		err(1, "munmap");
	close(fd);

	return error;
}

/*
 * State transitions.
 */
static int
test_state(struct context *ctx)
{
	if (ioctl(ctx->c_fd, KIOENABLE, &ctx->c_mode) == -1) {
		warn("KIOSETBUFSIZE -> KIOENABLE");
		return 1;
	}
	/* Stands in for the traced tail of the KIOENABLE ioctl. */
	do_syscall();
	if (ioctl(ctx->c_fd, KIODISABLE) == -1) {
		warn("KIOENABLE -> KIODISABLE");
		return 1;
	}
	if (ioctl(ctx->c_fd, KIOSETBUFSIZE, 0) != -1) {
		warnx("KIOSETBUFSIZE -> KIOSETBUFSIZE");
		return 1;
	}
	if (ioctl(ctx->c_fd, KIODISABLE) != -1) {
		warnx("KIOSETBUFSIZE -> KIODISABLE");
		return 1;
	}

	kcov_enable(ctx->c_fd, ctx->c_mode);
	if (ioctl(ctx->c_fd, KIOENABLE, &ctx->c_mode) != -1) {
		warnx("KIOENABLE -> KIOENABLE");
		return 1;
	}
	if (ioctl(ctx->c_fd, KIOSETBUFSIZE, 0) != -1) {
		warnx("KIOENABLE -> KIOSETBUFSIZE");
		return 1;
	}
	kcov_disable(ctx->c_fd);

	return 0;
}

#define	EXPECT(err, call) do {						\
	errno = 0;							\
	if ((call) != -1 || errno != (err)) {				\
		warnx("%s:%d: %s: want errno %d, got %d", __FILE__,	\
		    __LINE__, #call, (err), errno);			\
		return 1;						\
	}								\
} while (0)

/*
 * Not in the regress test: OpenBSD's errno for each refusal (kcov.c v1.51).
 */
static int
test_errno(struct context *ctx)
{
	struct kio_remote_attach remote = { KCOV_REMOTE_COMMON, 0 };
	unsigned long n;
	int fd, mode;

	fd = kcov_open();
	mode = ctx->c_mode;
	EXPECT(ENXIO, ioctl(fd, KIOENABLE, &mode));
	EXPECT(ENXIO, ioctl(fd, KIOREMOTEATTACH, &remote));
	EXPECT(ENOTTY, ioctl(fd, KIODISABLE + 100));
	n = 0;
	EXPECT(EINVAL, ioctl(fd, KIOSETBUFSIZE, &n));
	n = (512 << 10) + 1;
	EXPECT(EINVAL, ioctl(fd, KIOSETBUFSIZE, &n));
	EXPECT(EFAULT, ioctl(fd, KIOSETBUFSIZE, NULL));
	n = 1;		/* OpenBSD accepts a lone count word */
	if (ioctl(fd, KIOSETBUFSIZE, &n) == -1)
		err(1, "ioctl: KIOSETBUFSIZE 1");
	EXPECT(EBUSY, ioctl(fd, KIOSETBUFSIZE, &n));
	mode = KCOV_MODE_NONE;
	EXPECT(EINVAL, ioctl(fd, KIOENABLE, &mode));
	remote.subsystem = 1;
	EXPECT(EINVAL, ioctl(fd, KIOREMOTEATTACH, &remote));
	EXPECT(EPERM, ioctl(fd, KIODISABLE));

	/* This thread traces ctx->c_fd: a second enable is EBUSY. */
	kcov_enable(ctx->c_fd, ctx->c_mode);
	mode = ctx->c_mode;
	EXPECT(EBUSY, ioctl(fd, KIOENABLE, &mode));
	EXPECT(EPERM, ioctl(fd, KIODISABLE));
	kcov_disable(ctx->c_fd);
	close(fd);
	return 0;
}
