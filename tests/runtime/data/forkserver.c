/*
 * forkserver.c - syzkaller's BSD fork-server sequence (bsd-kcov.md §4.2,
 * §4.3) against the FreeBSD ABI of the hosted device.
 *
 *	forkserver plain|extra
 *
 * The parent opens /dev/kcov kCovers times, dup2()s each to 216 + i and
 * closes the original, sizes it with KIOSETBUFSIZE by value, maps it and
 * mprotect()s all but page 0 read-only.  It then forks kChildren children,
 * one at a time; each enables one descriptor (KIOENABLE by value), resets
 * word 0, runs the instrumented code and _exit()s without KIODISABLE.  After
 * waitpid() the parent checks, through its own read-only mapping, that the
 * child's records arrived.  With "extra" the parent's main thread keeps a
 * further descriptor (215) enabled the whole time, as the executor does for
 * extra coverage: children must still start untraced, able to enable their
 * own descriptor, and the parent's buffer must not see their records.
 */
#include <sys/ioctl.h>
#include <sys/kcov.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <stdint.h>

#include "kern_target.h"
#include "kt.h"

#define	kCoverFd	216
#define	kExtraCoverFd	215
#define	kCoverSize	(512 << 10)
#define	kCovers		4
#define	kChildren	200

/* Child exit codes: which step failed. */
#define	CHILD_ENABLE_FAILED	10
#define	CHILD_NO_RECORDS	11

static size_t page_size;

struct cover {
	int		fd;
	uint64_t	*data;
	size_t		size;
};

static void
cover_open(struct cover *cov, int fixed_fd)
{
	int fd;

	fd = open("/dev/kcov", O_RDWR);
	REQUIRE_MSG(fd != -1, "open /dev/kcov");
	REQUIRE(dup2(fd, fixed_fd) == fixed_fd);
	REQUIRE(close(fd) == 0);
	cov->fd = fixed_fd;
	REQUIRE(ioctl(cov->fd, KIOSETBUFSIZE, kCoverSize) == 0);
	cov->size = (size_t)kCoverSize * KCOV_ENTRY_SIZE;
	cov->data = mmap(NULL, cov->size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    cov->fd, 0);
	REQUIRE(cov->data != MAP_FAILED);
}

/* Only page 0, holding the count, stays writable by user code. */
static void
cover_protect(struct cover *cov)
{
	REQUIRE(mprotect((char *)cov->data + page_size,
	    cov->size - page_size, PROT_READ) == 0);
}

static uint64_t
cover_count(const struct cover *cov)
{
	return (__atomic_load_n(&cov->data[0], __ATOMIC_RELAXED));
}

static void
cover_reset(struct cover *cov)
{
	__atomic_store_n(&cov->data[0], 0, __ATOMIC_RELAXED);
}

static void __attribute__((noreturn))
child(struct cover *cov, int collect_comps)
{
	int mode = collect_comps ? KCOV_MODE_TRACE_CMP : KCOV_MODE_TRACE_PC;
	int i;

	if (ioctl(cov->fd, KIOENABLE, mode) != 0)
		_exit(CHILD_ENABLE_FAILED);
	cover_reset(cov);
	/* Enough records to run past page 0 into the read-only pages. */
	for (i = 0; i < 100; i++)
		kern_syscall(i);
	if (cover_count(cov) == 0)
		_exit(CHILD_NO_RECORDS);
	_exit(0);	/* no KIODISABLE, as syzkaller */
}

static void
check_records(const struct cover *cov, int collect_comps)
{
	uint64_t i, n = cover_count(cov);

	REQUIRE_MSG(n > 0, "child's records missing");
	/* The runtime writes past what the user mapping lets user code write. */
	REQUIRE_MSG(8 + n * (collect_comps ? 32 : 8) > page_size,
	    "records did not reach the read-only pages");
	if (!collect_comps) {
		REQUIRE(8 + n * 8 <= cov->size);
		for (i = 1; i <= n; i++)
			REQUIRE_MSG(kern_text_contains(cov->data[i]),
			    "PC outside the instrumented code");
	} else {
		REQUIRE(8 + n * 32 <= cov->size);
		for (i = 0; i < n; i++) {
			REQUIRE_MSG(cov->data[1 + 4 * i] <= 7,
			    "invalid kcov comp type");
			REQUIRE(kern_text_contains(cov->data[4 + 4 * i]));
		}
	}
}

static void
forkserver(int extra)
{
	struct cover covs[kCovers], extra_cov;
	int i, status, comps;
	pid_t pid;

	for (i = 0; i < kCovers; i++) {
		cover_open(&covs[i], kCoverFd + i);
		cover_protect(&covs[i]);
	}
	if (extra) {
		cover_open(&extra_cov, kExtraCoverFd);
		cover_protect(&extra_cov);
		REQUIRE(ioctl(extra_cov.fd, KIOENABLE, KCOV_MODE_TRACE_PC) == 0);
		/* The parent's own tracing works... */
		cover_reset(&extra_cov);
		kern_syscall(1);
		REQUIRE(cover_count(&extra_cov) > 0);
		cover_reset(&extra_cov);
	}

	for (i = 0; i < kChildren; i++) {
		struct cover *cov = &covs[i % kCovers];

		/* Alternate PC and CMP per round over the four descriptors. */
		comps = (i / kCovers) % 2;
		cover_reset(cov);
		pid = fork();
		REQUIRE(pid != -1);
		if (pid == 0)
			child(cov, comps);
		REQUIRE(waitpid(pid, &status, 0) == pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			printf("child %d (fd %d): status 0x%x\n", i, cov->fd,
			    status);
			REQUIRE_MSG(WEXITSTATUS(status) != CHILD_ENABLE_FAILED,
			    "KIOENABLE failed in a child");
			REQUIRE_MSG(0, "child failed");
		}
		check_records(cov, comps);
	}

	if (extra) {
		/* ...and none of the children's records went there. */
		REQUIRE_MSG(cover_count(&extra_cov) == 0,
		    "child recorded into the parent's extra descriptor");
		REQUIRE(ioctl(extra_cov.fd, KIODISABLE, 0) == 0);
	}
	/* Every descriptor is READY again: the parent can enable each. */
	for (i = 0; i < kCovers; i++) {
		REQUIRE(ioctl(covs[i].fd, KIOENABLE, KCOV_MODE_TRACE_PC) == 0);
		REQUIRE(ioctl(covs[i].fd, KIODISABLE, 0) == 0);
	}
	printf("%d children ok\n", kChildren);
}

static void
plain(void)
{
	forkserver(0);
}

static void
extra(void)
{
	forkserver(1);
}

static const struct kt_case cases[] = {
	KT_CASE(plain),
	KT_CASE(extra),
};

int
main(int argc, char **argv)
{

	page_size = (size_t)sysconf(_SC_PAGESIZE);
	return (kt_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0])));
}
