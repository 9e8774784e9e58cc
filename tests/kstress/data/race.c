/*
 * race.c - kcov descriptors shared by 8 processes, hammered at once.
 *
 * tests/kmod's stress.c gives each process descriptors of its own; here
 * every process works on the same open files, so the module's per-file
 * lock, its buffer publication (mmap racing the sizing ioctl), the deferred
 * free of a descriptor closed while running, and task exit race for real.
 *
 *	race nproc generations ops seed
 *
 * Each generation the parent opens four descriptors (two on
 * /sys/kernel/debug/kcov in Linux's ABI, two on /dev/kcov in FreeBSD's),
 * forks nproc children, which share them, and closes its own copies.  Each
 * child runs two threads; each thread draws `ops` operations (rand_r, seeded
 * from seed, generation, child and thread) on a random descriptor:
 *
 *	size     SETBUFSIZE / INIT_TRACE of ENTRIES   0, EBUSY
 *	map      mmap the whole buffer, read the count, munmap   0, EINVAL
 *	enable   PC or CMP                            0, EBUSY, EINVAL
 *	disable                                       0, EINVAL
 *	record   a write to /dev/kcovtest; if this thread traces into a
 *	         mapped descriptor, it first resets the count word, which
 *	         after the write must not exceed the capacity of its mode
 *	exit     a new thread enables, records and exits still enabled
 *	close    the process closes its copy of the descriptor
 *	dupclose dup() and close the duplicate
 *
 * The errnos allowed are the ones each ABI documents for the call in some
 * state (bsd-kcov.md 1.6-1.7, linux-kcov.md 2.3-2.4); any other result is
 * reported.  Children exit with threads possibly still tracing, and the
 * last close of a descriptor happens in whichever process is last.
 *
 * Prints "race: <ops> ops, <n> unexpected, <r> records seen, <f> failed
 * processes" and exits 0 only if nothing unexpected happened.
 */
#define _GNU_SOURCE
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
#include <unistd.h>

#define	ENTRIES		1024UL
#define	SIZE		(ENTRIES * 8)
#define	NDESC		4
#define	NTHREADS	2

/* FreeBSD's <sys/kcov.h> and Linux's <linux/kcov.h>, by number. */
#define	KIOENABLE	0x20046302UL
#define	KIODISABLE	0x20006303UL
#define	KIOSETBUFSIZE	0x20046304UL
#define	KCOV_INIT_TRACE	0x80086301UL
#define	KCOV_ENABLE	0x6364UL
#define	KCOV_DISABLE	0x6365UL

struct desc {
	int	 fd;		/* this process's copy, -1 once closed */
	int	 is_linux;
	volatile uint64_t *map;	/* a long-lived mapping of this process, or NULL */
	pthread_mutex_t lock;	/* protects fd and map within the process */
};

static struct desc descs[NDESC];
static int kcovtest;
static long unexpected, records;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;

static void
bad(const char *what, int d, int err)
{
	pthread_mutex_lock(&stats_lock);
	if (unexpected++ < 10)
		fprintf(stderr, "race[%d]: %s on descriptor %d (%s): %s\n", getpid(), what, d,
		    descs[d].is_linux ? "linux" : "freebsd", err ? strerror(err) : "invariant");
	pthread_mutex_unlock(&stats_lock);
}

static int
allowed(int err, int a, int b, int c)
{
	return err == 0 || err == a || err == b || err == c;
}

/* The process's fd for d, or -1 (closed); a dup so a concurrent close is harmless. */
static int
grab(int d)
{
	int fd = -1;

	pthread_mutex_lock(&descs[d].lock);
	if (descs[d].fd >= 0)
		fd = dup(descs[d].fd);
	pthread_mutex_unlock(&descs[d].lock);
	return fd;
}

static int
xioctl(int fd, unsigned long cmd, unsigned long arg)
{
	return ioctl(fd, cmd, arg) == 0 ? 0 : errno;
}

struct tstate {
	unsigned seed;
	int	 traced;	/* descriptor this thread enabled, or -1 */
	int	 mode;
};

static void
op_enable(struct tstate *t, int d, int fd)
{
	int mode = rand_r(&t->seed) & 1;
	int err = xioctl(fd, descs[d].is_linux ? KCOV_ENABLE : KIOENABLE, mode);

	/* Linux: EINVAL not READY, EBUSY owned or thread bound; FreeBSD: EBUSY
	 * not READY, EINVAL thread bound. */
	if (!allowed(err, EINVAL, EBUSY, 0))
		bad("enable", d, err);
	if (err == 0) {
		t->traced = d;
		t->mode = mode;
	}
}

static void
op_disable(struct tstate *t, int d, int fd)
{
	int err = xioctl(fd, descs[d].is_linux ? KCOV_DISABLE : KIODISABLE, 0);

	if (!allowed(err, EINVAL, 0, 0))
		bad("disable", d, err);
	if (err == 0) {
		if (t->traced != d)
			bad("disable by a thread that never enabled", d, 0);
		t->traced = -1;
	}
}

static void
op_record(struct tstate *t)
{
	volatile uint64_t *map = NULL;
	uint64_t count, cap;
	int d = t->traced;

	if (d >= 0) {
		pthread_mutex_lock(&descs[d].lock);
		map = descs[d].map;
		pthread_mutex_unlock(&descs[d].lock);
	}
	if (map != NULL)	/* reset: the count is the caller's to clear */
		__atomic_store_n(&map[0], 0, __ATOMIC_RELAXED);
	if (write(kcovtest, "0xC0FFEE", 8) != 8)
		bad("write /dev/kcovtest", d < 0 ? 0 : d, errno);
	if (map == NULL)
		return;
	count = __atomic_load_n(&map[0], __ATOMIC_RELAXED);
	cap = t->mode ? (ENTRIES - 1) / 4 : ENTRIES - 1;
	if (count > cap)
		bad("count beyond capacity", d, 0);
	if (count > 0)
		__atomic_fetch_add(&records, 1, __ATOMIC_RELAXED);
}

static void
op_map(int d, int fd)
{
	void *m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (m == MAP_FAILED) {
		/* Not sized yet (or sizing still in flight). */
		if (errno != EINVAL)
			bad("mmap", d, errno);
		return;
	}
	if (__atomic_load_n((volatile uint64_t *)m, __ATOMIC_RELAXED) > ENTRIES - 1)
		bad("count word beyond the buffer", d, 0);
	pthread_mutex_lock(&descs[d].lock);
	if (descs[d].map == NULL) {
		descs[d].map = m;	/* kept until the process exits */
		m = NULL;
	}
	pthread_mutex_unlock(&descs[d].lock);
	if (m != NULL && munmap(m, SIZE))
		bad("munmap", d, errno);
}

struct exiter {
	struct tstate t;
	int	 d, fd;
};

static void *
exiter_body(void *arg)
{
	struct exiter *x = arg;

	op_enable(&x->t, x->d, x->fd);
	op_record(&x->t);
	return NULL;	/* exits still tracing, if the enable worked */
}

static void
op_exit(struct tstate *t, int d, int fd)
{
	struct exiter x = { .t = { .seed = rand_r(&t->seed), .traced = -1 }, .d = d, .fd = fd };
	pthread_t th;

	if (pthread_create(&th, NULL, exiter_body, &x) || pthread_join(th, NULL))
		bad("thread", d, errno);
}

static void
op_close(int d)
{
	int fd;

	pthread_mutex_lock(&descs[d].lock);
	fd = descs[d].fd;
	descs[d].fd = -1;
	pthread_mutex_unlock(&descs[d].lock);
	if (fd >= 0 && close(fd))
		bad("close", d, errno);
}

static void *
thread_body(void *arg)
{
	struct tstate *t = arg;
	int i, ops = t->mode;

	t->mode = 0;
	for (i = 0; i < ops; i++) {
		int d = rand_r(&t->seed) % NDESC;
		int op = rand_r(&t->seed) % 16;
		int fd;

		if (op == 15) {
			op_close(d);
			continue;
		}
		if (op >= 11) {
			op_record(t);
			continue;
		}
		if ((fd = grab(d)) < 0)
			continue;
		if (op <= 1) {
			int err = xioctl(fd, descs[d].is_linux ? KCOV_INIT_TRACE : KIOSETBUFSIZE, ENTRIES);

			if (!allowed(err, EBUSY, 0, 0))
				bad("size", d, err);
		} else if (op <= 3) {
			op_map(d, fd);
		} else if (op <= 6) {
			op_enable(t, d, fd);
		} else if (op <= 8) {
			op_disable(t, d, fd);
		} else if (op == 9) {
			op_exit(t, d, fd);
		}
		/* op 10: dup and close only */
		if (close(fd))
			bad("close of a dup", d, errno);
	}
	return NULL;
}

static int
child(unsigned seed, int ops)
{
	struct tstate ts[NTHREADS];
	pthread_t th[NTHREADS];
	int i;

	for (i = 0; i < NDESC; i++)
		pthread_mutex_init(&descs[i].lock, NULL);
	for (i = 0; i < NTHREADS; i++) {
		ts[i] = (struct tstate){ .seed = seed * 31 + (unsigned)i, .traced = -1, .mode = ops };
		if (pthread_create(&th[i], NULL, thread_body, &ts[i]))
			return 1;
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	printf("%ld %ld\n", unexpected, records);
	fflush(stdout);
	return unexpected != 0;
}

int
main(int argc, char **argv)
{
	long total_unexpected = 0, total_records = 0;
	int nproc, gens, ops, g, p, i, failed = 0, pipefd[2];
	unsigned seed;

	if (argc != 5) {
		fprintf(stderr, "usage: race nproc generations ops seed\n");
		return 64;
	}
	nproc = atoi(argv[1]);
	gens = atoi(argv[2]);
	ops = atoi(argv[3]);
	seed = (unsigned)strtoul(argv[4], NULL, 0);
	if ((kcovtest = open("/dev/kcovtest", O_WRONLY)) < 0) {
		perror("race: /dev/kcovtest");
		return 66;
	}
	for (g = 0; g < gens; g++) {
		FILE *in;
		long u, r;
		int status;

		for (i = 0; i < NDESC; i++) {
			descs[i].is_linux = i < NDESC / 2;
			descs[i].map = NULL;
			descs[i].fd = open(descs[i].is_linux ? "/sys/kernel/debug/kcov" : "/dev/kcov", O_RDWR);
			if (descs[i].fd < 0) {
				perror("race: open");
				return 66;
			}
		}
		if (pipe(pipefd)) {
			perror("race: pipe");
			return 71;
		}
		for (p = 0; p < nproc; p++) {
			pid_t pid = fork();

			if (pid < 0) {
				perror("race: fork");
				return 71;
			}
			if (pid == 0) {
				close(pipefd[0]);
				dup2(pipefd[1], STDOUT_FILENO);
				_exit(child(seed ^ (unsigned)(g * 1000003 + p * 7919), ops));
			}
		}
		close(pipefd[1]);
		for (i = 0; i < NDESC; i++)
			close(descs[i].fd);	/* the children hold the last copies */
		in = fdopen(pipefd[0], "r");
		while (in != NULL && fscanf(in, "%ld %ld", &u, &r) == 2) {
			total_unexpected += u;
			total_records += r;
		}
		if (in != NULL)
			fclose(in);
		while (wait(&status) > 0)
			failed += !WIFEXITED(status) || WEXITSTATUS(status) > 1;
	}
	printf("race: %ld ops, %ld unexpected, %ld records seen, %d failed processes\n",
	    (long)gens * nproc * NTHREADS * ops, total_unexpected, total_records, failed);
	return total_unexpected != 0 || failed != 0 || total_records == 0;
}
