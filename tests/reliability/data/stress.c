/*
 * stress.c - a 32-thread stress of the hosted kcov runtime, built with
 * ASan+UBSan and with TSan by test_sanitizers.py (issue 7, point 2).
 *
 * Each cycle is one thread's life: open a descriptor (FreeBSD or Linux ABI,
 * alternating), size and map it, enable, record, disable, enable again in
 * the other mode, record; then close the next thread's descriptor while
 * that thread may still be recording into it, and keep recording into its
 * own until its neighbour has closed it.  Some threads disable before the
 * close, the others exit while RUNNING on a closed (DYING) descriptor, so
 * both the immediate and the deferred free run.  Threads start in waves of
 * 32; `./stress CYCLES` runs at least CYCLES thread lives.
 *
 * Contract checks on the way (bsd-kcov.md §1.9, linux-kcov.md §2.6): the
 * count never exceeds the capacity; after a FreeBSD close recording has
 * stopped, after a Linux close it goes on; a thread still bound to a
 * closed FreeBSD descriptor cannot enable another (EINVAL; Linux: EBUSY).
 * Any failure prints "FAIL ..." and exits 1; success prints "PASS N".
 *
 * `./stress selftest` commits one heap overflow and one data race on
 * purpose, so the test can show that the sanitizer build does report.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <kcovrt.h>

#define NTHREADS 32
#define ENTRIES 512

#define FBSD_SETBUFSIZE 0x20046304UL
#define FBSD_ENABLE     0x20046302UL
#define FBSD_DISABLE    0x20006303UL
#define LNX_INIT        0x80086301UL
#define LNX_ENABLE      0x6364UL
#define LNX_DISABLE     0x6365UL

int repeat(int n);	/* data/rec.c: n PCs or n comparisons */

struct slot {
	int fd;
	int abi;
	int variant;
	atomic_int closed;
	pthread_t th;
};

static struct slot slots[NTHREADS];
static pthread_barrier_t opened;
static int wave;

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		printf("FAIL wave %d line %d: %s (errno %d): ", wave,	\
		    __LINE__, #cond, errno);				\
		printf(__VA_ARGS__);					\
		printf("\n");						\
		fflush(stdout);						\
		_exit(1);						\
	}								\
} while (0)

static unsigned long
cmd(int abi, char what)
{
	if (abi == KCOVRT_ABI_LINUX)
		return what == 's' ? LNX_INIT : what == 'e' ? LNX_ENABLE :
		    LNX_DISABLE;
	return what == 's' ? FBSD_SETBUFSIZE : what == 'e' ? FBSD_ENABLE :
	    FBSD_DISABLE;
}

static int
open_sized(int abi, volatile uint64_t **buf)
{
	void *p;
	int fd;

	fd = kcovrt_open(O_CLOEXEC, abi);
	CHECK(fd >= 0, "open");
	CHECK(kcovrt_ioctl(fd, cmd(abi, 's'), ENTRIES) == 0, "size");
	p = kcovrt_mmap(NULL, ENTRIES * 8, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED, "mmap");
	*buf = p;
	return fd;
}

static void *
life(void *arg)
{
	struct slot *s = arg, *next;
	volatile uint64_t *buf, *buf2;
	uint64_t c1, c2;
	int i = (int)(s - slots), fd2;

	s->fd = open_sized(s->abi, &buf);
	/* enable / record / disable, twice, in both modes (mode 0 = PC). */
	for (int m = 0; m < 2; m++) {
		CHECK(kcovrt_ioctl(s->fd, cmd(s->abi, 'e'), m) == 0, "enable");
		buf[0] = 0;
		repeat(40 + i);
		c1 = buf[0];
		CHECK(c1 == (uint64_t)(m == 0 ? 40 + i :
		    (40 + i < (ENTRIES - 1) / 4 ? 40 + i : (ENTRIES - 1) / 4)),
		    "count %llu in mode %d", (unsigned long long)c1, m);
		if (m == 0)
			CHECK(kcovrt_ioctl(s->fd, cmd(s->abi, 'd'), 0) == 0,
			    "disable");
	}
	repeat(1000);	/* fill the buffer: the rest is dropped */
	CHECK(buf[0] == (ENTRIES - 1) / 4, "full count %llu",
	    (unsigned long long)buf[0]);
	buf[0] = 0;
	if (s->variant == 0)
		CHECK(kcovrt_ioctl(s->fd, cmd(s->abi, 'd'), 0) == 0, "disable");
	pthread_barrier_wait(&opened);

	/* Close the neighbour's descriptor, which it may be recording into. */
	next = &slots[(i + 1) % NTHREADS];
	CHECK(kcovrt_close(next->fd) == 0, "close of thread %d's fd",
	    (i + 1) % NTHREADS);
	atomic_store(&next->closed, 1);

	while (!atomic_load(&s->closed))
		repeat(3);
	c1 = buf[0];
	CHECK(c1 <= (ENTRIES - 1) / 4, "count %llu over capacity",
	    (unsigned long long)c1);
	repeat(5);
	c2 = buf[0];
	if (s->variant == 0 || s->abi == KCOVRT_ABI_FREEBSD)
		CHECK(c2 == c1, "recorded after %s: %llu -> %llu",
		    s->variant == 0 ? "disable" : "close",
		    (unsigned long long)c1, (unsigned long long)c2);
	else
		CHECK(c2 == (c1 + 5 < (ENTRIES - 1) / 4 ? c1 + 5 :
		    (ENTRIES - 1) / 4), "linux stopped recording at close");
	if (s->variant == 1 && (wave + i) % 4 == 0) {
		/* Still bound to the closed descriptor. */
		fd2 = open_sized(s->abi, &buf2);
		errno = 0;
		CHECK(kcovrt_ioctl(fd2, cmd(s->abi, 'e'), 0) == -1 &&
		    errno == (s->abi == KCOVRT_ABI_LINUX ? EBUSY : EINVAL),
		    "enable of a second fd while bound");
		CHECK(kcovrt_close(fd2) == 0, "close");
		munmap((void *)buf2, ENTRIES * 8);
	}
	munmap((void *)buf, ENTRIES * 8);
	return NULL;	/* thread exit: the deferred free of a DYING fd */
}

static int racy;

static void *
race(void *arg)
{
	racy++;
	return arg;
}

static int
selftest(void)
{
	volatile char *p = malloc(8);
	pthread_t t;

	pthread_create(&t, NULL, race, NULL);
	racy++;
	pthread_join(t, NULL);
	p[8] = 1;	/* one past the end */
	free((void *)p);
	printf("selftest done\n");
	return 0;
}

int
main(int argc, char **argv)
{
	long cycles = argc > 1 ? strtol(argv[1], NULL, 0) : 10000;
	long done = 0;

	if (argc > 1 && strcmp(argv[1], "selftest") == 0)
		return selftest();

	pthread_barrier_init(&opened, NULL, NTHREADS);
	for (wave = 0; done < cycles; wave++) {
		for (int i = 0; i < NTHREADS; i++) {
			struct slot *s = &slots[i];

			s->abi = (wave + i) % 2 ? KCOVRT_ABI_LINUX :
			    KCOVRT_ABI_FREEBSD;
			s->variant = (wave + i / 2) % 2;
			atomic_store(&s->closed, 0);
			CHECK(pthread_create(&s->th, NULL, life, s) == 0,
			    "pthread_create");
		}
		for (int i = 0; i < NTHREADS; i++)
			CHECK(pthread_join(slots[i].th, NULL) == 0, "join");
		done += NTHREADS;
	}
	pthread_barrier_destroy(&opened);
	printf("PASS %ld cycles in %d waves of %d threads\n", done, wave,
	    NTHREADS);
	return 0;
}
