/*
 * stress.c - many short kcov lifetimes at once, against kcov.ko in the VM.
 *
 * nproc processes each run ncycles cycles of
 *	open / size / map / enable / record / disable or exit / close,
 * where "record" is a write to the instrumented /dev/kcovtest, checked to
 * have recorded something.  The cycles rotate through the ways a trace
 * ends (FreeBSD's contract cases, syzkaller's reliances):
 *	0  the main thread enables and disables;
 *	1  a new thread enables, records, disables and exits;
 *	2  a new thread enables, records and exits with tracing on (the exit
 *	   returns the descriptor to READY); the main thread closes it, maybe
 *	   before the exit hook has run;
 *	3  a new thread enables, records and closes the descriptor while
 *	   tracing (the free waits for the thread's exit), then exits;
 *	every 16th cycle instead: a forked child enables, records and exits
 *	   with tracing on; once it is reaped the parent enables the same
 *	   descriptor again, records and disables.
 * Even groups of cycles trace PCs, odd ones comparisons.
 *
 * Built twice: -DSTRESS_FREEBSD for /dev/kcov in FreeBSD's ABI, otherwise
 * for /sys/kernel/debug/kcov in Linux's.
 *
 *	stress nproc ncycles
 *
 * Prints "stress <abi>: <n> cycles, <f> failed processes, <s> s" and the
 * first failures of each process on stderr; exits 0 only if every cycle of
 * every process succeeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef STRESS_FREEBSD
#include <sys/kcov.h>
#define	ABI		"freebsd"
#define	DEVICE		"/dev/kcov"
#define	MODE_PC		KCOV_MODE_TRACE_PC
#define	MODE_CMP	KCOV_MODE_TRACE_CMP
#define	SETBUFSIZE	KIOSETBUFSIZE
#define	ENABLE		KIOENABLE
#define	DISABLE		KIODISABLE
#else
#include <linux/kcov.h>
#define	ABI		"linux"
#define	DEVICE		"/sys/kernel/debug/kcov"
#define	MODE_PC		KCOV_TRACE_PC
#define	MODE_CMP	KCOV_TRACE_CMP
#define	SETBUFSIZE	KCOV_INIT_TRACE
#define	ENABLE		KCOV_ENABLE
#define	DISABLE		KCOV_DISABLE
#endif

#define	ENTRIES		1024
#define	SIZE		(ENTRIES * 8UL)

struct cycle {
	int		 fd;
	int		 mode;
	int		 how;		/* 0 disable, 1 exit enabled, 2 close enabled */
	volatile uint64_t *cover;
	const char	*fail;		/* NULL, or what failed */
};

static int dev;		/* /dev/kcovtest */
static const char *inputs[] = { "7", "abc", "0xC0FFEE", "42", "x" };

/* Enable, reset, make the traced call, check something was recorded. */
static const char *
record(struct cycle *c, const char *input)
{
	if (ioctl(c->fd, ENABLE, c->mode))
		return "enable";
	__atomic_store_n(&c->cover[0], 0, __ATOMIC_RELAXED);
	if (write(dev, input, strlen(input)) < 0)
		return "write";
	if (__atomic_load_n(&c->cover[0], __ATOMIC_RELAXED) == 0)
		return "nothing recorded";
	return NULL;
}

static void *
thread_body(void *arg)
{
	struct cycle *c = arg;

	c->fail = record(c, inputs[c->how]);
	if (c->fail != NULL)
		return NULL;
	if (c->how == 0 && ioctl(c->fd, DISABLE, 0))
		c->fail = "disable";
	if (c->how == 2 && close(c->fd))
		c->fail = "close while enabled";
	return NULL;
}

static const char *
in_thread(struct cycle *c)
{
	pthread_t t;

	if (pthread_create(&t, NULL, thread_body, c))
		return "pthread_create";
	if (pthread_join(t, NULL))
		return "pthread_join";
	return c->fail;
}

static const char *
in_child(struct cycle *c)
{
	const char *err;
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return "fork";
	if (pid == 0)
		_exit(record(c, "abc") == NULL ? 0 : 1);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return "child";
	/* Reaped: the child's exit has made the descriptor READY again. */
	if ((err = record(c, "7")) != NULL)
		return err;
	return ioctl(c->fd, DISABLE, 0) ? "disable after child" : NULL;
}

static const char *
one_cycle(int i)
{
	struct cycle c = { .mode = (i / 4) % 2 ? MODE_CMP : MODE_PC };
	const char *err = NULL;
	void *map;
	int closed = 0;

	if ((c.fd = open(DEVICE, O_RDWR)) < 0)
		return "open";
	if (ioctl(c.fd, SETBUFSIZE, ENTRIES)) {
		close(c.fd);
		return "size";
	}
	map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, c.fd, 0);
	if (map == MAP_FAILED) {
		close(c.fd);
		return "mmap";
	}
	c.cover = map;
	if (i % 16 == 15) {
		err = in_child(&c);
	} else if (i % 4 == 0) {
		err = record(&c, inputs[i % 5]);
		if (err == NULL && ioctl(c.fd, DISABLE, 0))
			err = "disable";
	} else {
		c.how = i % 4 - 1;
		err = in_thread(&c);
		closed = c.how == 2 && err == NULL;
	}
	if (munmap(map, SIZE))
		err = "munmap";
	if (!closed && close(c.fd))
		err = "close";
	return err;
}

static int
worker(int p, int ncycles)
{
	int i, failures = 0;

	for (i = 0; i < ncycles; i++) {
		const char *err = one_cycle(i);

		if (err != NULL && failures++ < 5)
			fprintf(stderr, "stress " ABI ": process %d cycle %d: %s: %s\n",
			    p, i, err, strerror(errno));
	}
	return failures;
}

int
main(int argc, char **argv)
{
	struct timespec t0, t1;
	int p, nproc, ncycles, failures = 0, status;

	if (argc != 3) {
		fprintf(stderr, "usage: stress nproc ncycles\n");
		return 64;
	}
	nproc = atoi(argv[1]);
	ncycles = atoi(argv[2]);
	if ((dev = open("/dev/kcovtest", O_WRONLY)) < 0) {
		perror("stress: /dev/kcovtest");
		return 66;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (p = 0; p < nproc; p++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("stress: fork");
			return 71;
		}
		if (pid == 0)
			_exit(worker(p, ncycles) > 0);
	}
	while (wait(&status) > 0)
		failures += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("stress " ABI ": %d cycles, %d failed processes, %.1f s\n", nproc * ncycles,
	    failures, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return failures != 0;
}
