/*
 * forkserver.c - syzkaller's fork-server use of kcov (bsd-kcov.md §4.2-4.3,
 * linux-kcov.md §5.1-5.2), run against kcov.ko in the VM.
 *
 * The long-lived parent opens the device, moves the descriptor to
 * syzkaller's fixed kCoverFd with dup2, sizes it to kCoverSize entries and
 * maps it once: FreeBSD plainly, then read-only above page 0 (cover_protect);
 * Linux between two PROT_NONE guard pages.  Then, per program, it forks a
 * child that enables tracing on the inherited descriptor, resets word 0,
 * makes the traced call (a write to the instrumented /dev/kcovtest) and
 * exits without disabling.  The parent reaps the child, makes the buffer
 * writable (cover_unprotect), sorts the PCs in place as write_cover does,
 * and prints them.  The next child enables the same descriptor again, which
 * works only if the previous child's exit returned it to READY.
 *
 * Built twice: -DFORKSERVER_FREEBSD for /dev/kcov in FreeBSD's ABI
 * (<sys/kcov.h> from the kcov package's compat headers), otherwise for
 * /sys/kernel/debug/kcov with Debian's <linux/kcov.h>.
 *
 *	forkserver nprogs input ...
 *
 * Program i writes input[i % ninputs] and traces comparisons when i % 3 == 2.
 * Output, per program: "prog <i> <pc|cmp> status <s> count <n>", then one
 * line per record: "pc 0x<pc>" or "cmp <type> 0x<arg1> 0x<arg2> 0x<pc>".
 * Exit status 0, or 1 if any program failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef FORKSERVER_FREEBSD
#include <sys/kcov.h>
#define	DEVICE		"/dev/kcov"
#define	MODE_PC		KCOV_MODE_TRACE_PC
#define	MODE_CMP	KCOV_MODE_TRACE_CMP
#define	SETBUFSIZE	KIOSETBUFSIZE
#define	ENABLE		KIOENABLE
#else
#include <linux/kcov.h>
#define	DEVICE		"/sys/kernel/debug/kcov"
#define	MODE_PC		KCOV_TRACE_PC
#define	MODE_CMP	KCOV_TRACE_CMP
#define	SETBUFSIZE	KCOV_INIT_TRACE
#define	ENABLE		KCOV_ENABLE
#endif

#define	COVER_FD	216		/* kCoverFd */
#define	COVER_SIZE	(512 << 10)	/* kCoverSize, entries */
#define	DATA_SIZE	(COVER_SIZE * 8UL)

static long page;

static void
die(const char *what)
{
	fprintf(stderr, "forkserver: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* cover_open: open, dup2 to the fixed descriptor, size. */
static void
cover_open(void)
{
	int fd = open(DEVICE, O_RDWR);

	if (fd == -1)
		die("open " DEVICE);
	if (dup2(fd, COVER_FD) < 0)
		die("dup2");
	close(fd);
	if (ioctl(COVER_FD, SETBUFSIZE, COVER_SIZE))	/* by value */
		die("size");
}

/* cover_mmap (and, on FreeBSD, cover_protect). */
static uint64_t *
cover_mmap(void)
{
	void *p;

#ifdef FORKSERVER_FREEBSD
	p = mmap(NULL, DATA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, COVER_FD, 0);
	if (p == MAP_FAILED)
		die("mmap");
	if (mprotect((char *)p + page, DATA_SIZE - page, PROT_READ))
		die("cover_protect");
#else
	char *guard = mmap(NULL, DATA_SIZE + 2 * page, PROT_NONE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (guard == MAP_FAILED)
		die("mmap guard");
	p = mmap(guard + page, DATA_SIZE, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_FIXED, COVER_FD, 0);
	if (p != guard + page)
		die("mmap");
#endif
	return p;
}

/* The child: enable on the inherited descriptor, reset, call, exit. */
static void
child(const char *input, int mode, volatile uint64_t *cover)
{
	int dev = open("/dev/kcovtest", O_WRONLY);

	if (dev == -1)
		_exit(3);
	if (ioctl(COVER_FD, ENABLE, mode)) {
		fprintf(stderr, "forkserver: cover enable write trace failed: %s\n",
		    strerror(errno));
		_exit(4);
	}
	__atomic_store_n(&cover[0], 0, __ATOMIC_RELAXED);	/* cover_reset */
	if (write(dev, input, strlen(input)) < 0)
		_exit(5);
	_exit(0);	/* no disable: syzkaller never calls it */
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void
report(int i, int mode, int status, uint64_t *cover)
{
	uint64_t n = __atomic_load_n(&cover[0], __ATOMIC_RELAXED), j;

	printf("prog %d %s status %d count %llu\n", i, mode == MODE_CMP ? "cmp" : "pc",
	    status, (unsigned long long)n);
	if (mode == MODE_PC) {
		if (n > COVER_SIZE - 1)
			n = COVER_SIZE - 1;
		qsort(&cover[1], n, 8, cmp_u64);	/* write_cover, in place */
		for (j = 0; j < n; j++)
			printf("pc 0x%llx\n", (unsigned long long)cover[j + 1]);
		return;
	}
	if (n > (COVER_SIZE - 1) / 4)
		n = (COVER_SIZE - 1) / 4;
	for (j = 0; j < n; j++) {
		uint64_t *r = &cover[1 + 4 * j];

		printf("cmp %llu 0x%llx 0x%llx 0x%llx\n", (unsigned long long)r[0],
		    (unsigned long long)r[1], (unsigned long long)r[2],
		    (unsigned long long)r[3]);
	}
}

int
main(int argc, char **argv)
{
	uint64_t *cover;
	int i, nprogs, failed = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: forkserver nprogs input ...\n");
		return 64;
	}
	page = sysconf(_SC_PAGESIZE);
	nprogs = atoi(argv[1]);
	cover_open();
	cover = cover_mmap();
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < nprogs; i++) {
		int mode = i % 3 == 2 ? MODE_CMP : MODE_PC, status;
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (pid == 0)
			child(argv[2 + i % (argc - 2)], mode, cover);
		if (waitpid(pid, &status, 0) != pid)
			die("waitpid");
#ifdef FORKSERVER_FREEBSD
		if (mprotect(cover, DATA_SIZE, PROT_READ | PROT_WRITE))
			die("cover_unprotect");
#endif
		status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		failed |= status != 0;
		report(i, mode, status, cover);
#ifdef FORKSERVER_FREEBSD
		if (mprotect((char *)cover + page, DATA_SIZE - page, PROT_READ))
			die("cover_protect");
#endif
	}
	return failed;
}
