/*
 * linux_kcov.c - the Linux kcov contract, as a client sees it, on the hosted
 * device (/sys/kernel/debug/kcov under kcov-run).
 *
 * doc_example_pc and doc_example_cmp are the two examples of
 * Documentation/dev-tools/kcov.rst (linux-kcov.md §4.1, §4.2), built against
 * <linux/kcov.h> with the syscall replaced by kern_syscall().  The other
 * cases are the contract of linux-kcov.md §2.3, §2.4 and §7 items 2-4 and 8,
 * one case per rule group, with Linux's errno for every refusal.
 */
#define _GNU_SOURCE
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <limits.h>
#include <linux/kcov.h>
#include <pthread.h>
#include <stdint.h>

#include "kern_target.h"
#include "kt.h"

#define	COVER_SIZE	(64 << 10)
#define	KCOV_PATH	"/sys/kernel/debug/kcov"
/* The 32-bit value of KCOV_INIT_TRACE, which a 64-bit kernel rejects. */
#define	KCOV_INIT_TRACE32	_IOR('c', 1, uint32_t)
#define	KERNEL_ENOTSUPP		524

static size_t page_size;

static int
open_kcov(void)
{
	int fd;

	fd = open(KCOV_PATH, O_RDWR);
	REQUIRE_MSG(fd != -1, "open " KCOV_PATH);
	return (fd);
}

static uint64_t
load_count(unsigned long *cover)
{
	return (__atomic_load_n(&cover[0], __ATOMIC_RELAXED));
}

static void
reset_count(unsigned long *cover)
{
	__atomic_store_n(&cover[0], 0, __ATOMIC_RELAXED);
}

/* A descriptor sized and mapped for `entries` words. */
static unsigned long *
setup(int *fdp, unsigned long entries)
{
	unsigned long *cover;
	int fd;

	fd = open_kcov();
	REQUIRE(ioctl(fd, KCOV_INIT_TRACE, entries) == 0);
	cover = mmap(NULL, entries * sizeof(unsigned long),
	    PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE(cover != MAP_FAILED);
	*fdp = fd;
	return (cover);
}

/* kcov.rst example 1: PC coverage of one "syscall". */
static void
doc_example_pc(void)
{
	unsigned long *cover, n, i;
	int fd;

	/* A single fd descriptor allows coverage collection on a single
	 * thread. */
	fd = open(KCOV_PATH, O_RDWR);
	REQUIRE(fd != -1);
	/* Setup trace mode and trace size. */
	REQUIRE(ioctl(fd, KCOV_INIT_TRACE, COVER_SIZE) == 0);
	/* Mmap buffer shared between kernel- and user-space. */
	cover = (unsigned long *)mmap(NULL, COVER_SIZE * sizeof(unsigned long),
	    PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE((void *)cover != MAP_FAILED);
	/* Enable coverage collection on the current thread. */
	REQUIRE(ioctl(fd, KCOV_ENABLE, KCOV_TRACE_PC) == 0);
	/* Reset coverage from the tail of the ioctl() call. */
	__atomic_store_n(&cover[0], 0, __ATOMIC_RELAXED);
	/* Call the target syscall call. */
	kern_syscall(1);
	/* Read number of PCs collected. */
	n = __atomic_load_n(&cover[0], __ATOMIC_RELAXED);
	REQUIRE_MSG(n > 0, "no PCs collected");
	for (i = 0; i < n; i++) {
		printf("0x%lx\n", cover[i + 1]);
		REQUIRE_MSG(kern_text_contains(cover[i + 1]),
		    "PC outside the instrumented code");
	}
	/* Disable coverage collection for the current thread. After this call
	 * coverage can be enabled for a different thread.
	 */
	REQUIRE(ioctl(fd, KCOV_DISABLE, 0) == 0);
	/* Free resources. */
	REQUIRE(munmap(cover, COVER_SIZE * sizeof(unsigned long)) == 0);
	REQUIRE(close(fd) == 0);
}

/* kcov.rst example 2: comparison operands. */
static void
doc_example_cmp(void)
{
	uint64_t *cover, type, arg1, arg2, is_const, size, ip;
	unsigned long n, i;
	int fd, found_magic = 0;

	fd = open(KCOV_PATH, O_RDWR);
	REQUIRE(fd != -1);
	REQUIRE(ioctl(fd, KCOV_INIT_TRACE, COVER_SIZE) == 0);
	cover = (uint64_t *)mmap(NULL, COVER_SIZE * sizeof(unsigned long),
	    PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE((void *)cover != MAP_FAILED);
	/* Enable comparison collection on the current thread. */
	REQUIRE(ioctl(fd, KCOV_ENABLE, KCOV_TRACE_CMP) == 0);
	__atomic_store_n(&cover[0], 0, __ATOMIC_RELAXED);
	kern_syscall(KERN_MAGIC);
	/* Read number of comparisons collected. */
	n = __atomic_load_n(&cover[0], __ATOMIC_RELAXED);
	REQUIRE_MSG(n > 0, "no comparisons collected");
	for (i = 0; i < n; i++) {
		type = cover[i * 4 + 1];
		/* arg1 and arg2 - operands of the comparison. */
		arg1 = cover[i * 4 + 2];
		arg2 = cover[i * 4 + 3];
		/* ip - caller address. */
		ip = cover[i * 4 + 4];
		/* size of the operands. */
		size = 1 << ((type & KCOV_CMP_MASK) >> 1);
		/* is_const - true if either operand is a compile-time
		 * constant.*/
		is_const = type & KCOV_CMP_CONST;
		printf("ip: 0x%lx type: 0x%lx, arg1: 0x%lx, arg2: 0x%lx, "
		    "size: %lu, %s\n", (unsigned long)ip, (unsigned long)type,
		    (unsigned long)arg1, (unsigned long)arg2,
		    (unsigned long)size, is_const ? "const" : "non-const");
		REQUIRE_MSG(type <= (KCOV_CMP_CONST | KCOV_CMP_MASK),
		    "invalid kcov comp type");
		REQUIRE_MSG(kern_text_contains(ip), "ip outside the code");
		/* The compiler passes the constant as arg1. */
		if (is_const && size == 4 && arg1 == KERN_MAGIC &&
		    arg2 == KERN_MAGIC)
			found_magic = 1;
	}
	REQUIRE_MSG(found_magic, "no const record for arg == KERN_MAGIC");
	REQUIRE(ioctl(fd, KCOV_DISABLE, 0) == 0);
	REQUIRE(munmap(cover, COVER_SIZE * sizeof(unsigned long)) == 0);
	REQUIRE(close(fd) == 0);
}

/* §2.3 KCOV_INIT_TRACE: EINVAL -> EBUSY order, once only; unknown cmds. */
static void
init_trace(void)
{
	int fd;

	fd = open_kcov();
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_INIT_TRACE, 0) == -1);
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_INIT_TRACE, 1) == -1);
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_INIT_TRACE,
	    (unsigned long)INT_MAX / sizeof(unsigned long) + 1) == -1);
	/* The full command value is matched: a 32-bit INIT_TRACE is unknown. */
	REQUIRE_ERRNO(ENOTTY, ioctl(fd, KCOV_INIT_TRACE32, 64) == -1);
	REQUIRE_ERRNO(ENOTTY, ioctl(fd, _IO('c', 99), 0) == -1);
	REQUIRE(ioctl(fd, KCOV_INIT_TRACE, 2) == 0);
	REQUIRE_ERRNO(EBUSY, ioctl(fd, KCOV_INIT_TRACE, 2) == -1);
	/* The size is checked before the state. */
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_INIT_TRACE, 1) == -1);
	REQUIRE_ERRNO(ENOTTY, ioctl(fd, _IO('c', 99), 0) == -1);
	REQUIRE(close(fd) == 0);
}

static int other_fd;
static int other_rc[2], other_errno[2];

static void *
other_thread(void *arg)
{
	(void)arg;
	errno = 0;
	other_rc[0] = ioctl(other_fd, KCOV_ENABLE, KCOV_TRACE_PC);
	other_errno[0] = errno;
	errno = 0;
	other_rc[1] = ioctl(other_fd, KCOV_DISABLE, 0);
	other_errno[1] = errno;
	return (NULL);
}

/* §2.3 KCOV_ENABLE / KCOV_DISABLE. */
static void
enable(void)
{
	unsigned long *cover;
	pthread_t t;
	int fd, fd2;

	fd = open_kcov();
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_ENABLE, KCOV_TRACE_PC) == -1);
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_DISABLE, 0) == -1);
	REQUIRE(close(fd) == 0);

	cover = setup(&fd, page_size / sizeof(unsigned long));
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_ENABLE, 2) == -1);
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_DISABLE, 0) == -1);
	REQUIRE(ioctl(fd, KCOV_ENABLE, KCOV_TRACE_PC) == 0);
	/* Enabled is not INIT: EINVAL, not EBUSY. */
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_ENABLE, KCOV_TRACE_PC) == -1);
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_ENABLE, KCOV_TRACE_CMP) == -1);
	/* This thread is bound: a second descriptor is EBUSY. */
	fd2 = open_kcov();
	REQUIRE(ioctl(fd2, KCOV_INIT_TRACE, 64) == 0);
	REQUIRE_ERRNO(EBUSY, ioctl(fd2, KCOV_ENABLE, KCOV_TRACE_PC) == -1);
	/* Only the owner disables, and only with 0. */
	other_fd = fd;
	pthread_create(&t, NULL, other_thread, NULL);
	pthread_join(t, NULL);
	REQUIRE(other_rc[0] == -1 && other_errno[0] == EINVAL);
	REQUIRE(other_rc[1] == -1 && other_errno[1] == EINVAL);
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_DISABLE, 1) == -1);
	REQUIRE_ERRNO(EINVAL, ioctl(fd2, KCOV_DISABLE, 0) == -1);
	REQUIRE(ioctl(fd, KCOV_DISABLE, 0) == 0);
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_DISABLE, 0) == -1);
	/* Repeatable, with the other mode, and now the second fd works. */
	REQUIRE(ioctl(fd, KCOV_ENABLE, KCOV_TRACE_CMP) == 0);
	REQUIRE(ioctl(fd, KCOV_DISABLE, 0) == 0);
	REQUIRE(ioctl(fd2, KCOV_ENABLE, KCOV_TRACE_PC) == 0);
	REQUIRE(ioctl(fd2, KCOV_DISABLE, 0) == 0);
	/* Disable keeps the buffer contents. */
	cover[0] = 0;
	REQUIRE(ioctl(fd, KCOV_ENABLE, KCOV_TRACE_PC) == 0);
	reset_count(cover);
	kern_syscall(1);
	REQUIRE(ioctl(fd, KCOV_DISABLE, 0) == 0);
	REQUIRE(load_count(cover) > 0);
	REQUIRE(close(fd2) == 0);
	REQUIRE(munmap(cover, page_size) == 0);
	REQUIRE(close(fd) == 0);
}

/* §2.3 KCOV_REMOTE_ENABLE argument checks. */
static void
remote_enable(void)
{
	struct kcov_remote_arg *arg;
	int fd;

	arg = calloc(1, sizeof(*arg) + sizeof(uint64_t));
	REQUIRE(arg != NULL);
	arg->trace_mode = KCOV_TRACE_PC;
	arg->area_size = 64;
	arg->num_handles = KCOV_REMOTE_MAX_HANDLES + 1;
	fd = open_kcov();
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_REMOTE_ENABLE, arg) == -1);
	arg->num_handles = 1;
	arg->handles[0] = kcov_remote_handle(KCOV_SUBSYSTEM_USB, 1);
	/* Not initialised. */
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_REMOTE_ENABLE, arg) == -1);
	REQUIRE_ERRNO(EFAULT, ioctl(fd, KCOV_REMOTE_ENABLE, NULL) == -1);
	REQUIRE(ioctl(fd, KCOV_INIT_TRACE, 64) == 0);
	arg->trace_mode = 7;
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_REMOTE_ENABLE, arg) == -1);
	REQUIRE(kcov_remote_handle(KCOV_SUBSYSTEM_USB, 1ULL << 32) == 0);
	REQUIRE(kcov_remote_handle(KCOV_SUBSYSTEM_USB, 5) ==
	    (KCOV_SUBSYSTEM_USB | 5));
	free(arg);
	REQUIRE(close(fd) == 0);
}

/* §2.4 mmap: after INIT, offset 0, exact length, repeatable, RO allowed. */
static void
mmap_rules(void)
{
	size_t len = 2 * page_size;
	uint64_t *a, *b, *ro;
	int fd;

	fd = open_kcov();
	REQUIRE_ERRNO(EINVAL, mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0) == MAP_FAILED);
	REQUIRE(ioctl(fd, KCOV_INIT_TRACE, len / sizeof(unsigned long)) == 0);
	REQUIRE_ERRNO(EINVAL, mmap(NULL, page_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0) == MAP_FAILED);
	REQUIRE_ERRNO(EINVAL, mmap(NULL, 3 * page_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0) == MAP_FAILED);
	REQUIRE_ERRNO(EINVAL, mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, (off_t)page_size) == MAP_FAILED);
	REQUIRE((a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
	    0)) != MAP_FAILED);
	REQUIRE((ro = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0)) !=
	    MAP_FAILED);
	REQUIRE(ioctl(fd, KCOV_ENABLE, KCOV_TRACE_PC) == 0);
	/* Also while enabled. */
	REQUIRE((b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
	    0)) != MAP_FAILED);
	reset_count((unsigned long *)a);
	kern_syscall(1);
	REQUIRE(ioctl(fd, KCOV_DISABLE, 0) == 0);
	REQUIRE(a[0] > 0 && a[0] == b[0] && a[0] == ro[0]);
	REQUIRE(a[1] == ro[1] && kern_text_contains(ro[1]));
	a[0] = 0x123456789abcdef;
	REQUIRE(b[0] == 0x123456789abcdef && ro[0] == 0x123456789abcdef);
	munmap(a, len);
	munmap(b, len);
	munmap(ro, len);
	REQUIRE(close(fd) == 0);

	/* A byte size that is not a page multiple cannot be mapped. */
	fd = open_kcov();
	REQUIRE(ioctl(fd, KCOV_INIT_TRACE, 100) == 0);
	REQUIRE_ERRNO(EINVAL, mmap(NULL, 100 * sizeof(unsigned long),
	    PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
	REQUIRE(close(fd) == 0);
}

static unsigned long *shared_cover;
static int shared_fd;

static void *
exit_thread(void *arg)
{
	int mode = (int)(intptr_t)arg;

	REQUIRE(ioctl(shared_fd, KCOV_ENABLE, mode) == 0);
	reset_count(shared_cover);
	kern_syscall(1);
	REQUIRE(load_count(shared_cover) > 0);
	/* No KCOV_DISABLE: exit disables. */
	return (NULL);
}

/* §2.6: exit auto-disables; the fd can be enabled by the next thread. */
static void
exit_auto_disables(void)
{
	pthread_t t;
	uint64_t n;

	shared_cover = setup(&shared_fd, page_size / sizeof(unsigned long));
	pthread_create(&t, NULL, exit_thread, (void *)(intptr_t)KCOV_TRACE_PC);
	pthread_join(t, NULL);
	n = load_count(shared_cover);
	kern_syscall(1);
	REQUIRE_MSG(load_count(shared_cover) == n, "records after exit");
	pthread_create(&t, NULL, exit_thread, (void *)(intptr_t)KCOV_TRACE_CMP);
	pthread_join(t, NULL);
	REQUIRE(ioctl(shared_fd, KCOV_ENABLE, KCOV_TRACE_PC) == 0);
	REQUIRE(ioctl(shared_fd, KCOV_DISABLE, 0) == 0);
	REQUIRE(close(shared_fd) == 0);
}

static void *
close_thread(void *arg)
{
	unsigned long *cover;
	int fd, fd2;

	(void)arg;
	cover = setup(&fd, page_size / sizeof(unsigned long));
	shared_cover = cover;
	REQUIRE(ioctl(fd, KCOV_ENABLE, KCOV_TRACE_PC) == 0);
	REQUIRE(close(fd) == 0);
	/* Linux: release only drops the file's reference. */
	reset_count(cover);
	kern_syscall(1);
	REQUIRE_MSG(load_count(cover) > 0, "no records after close");
	/* Still bound to this thread. */
	fd2 = open_kcov();
	REQUIRE(ioctl(fd2, KCOV_INIT_TRACE, 64) == 0);
	REQUIRE_ERRNO(EBUSY, ioctl(fd2, KCOV_ENABLE, KCOV_TRACE_PC) == -1);
	REQUIRE(close(fd2) == 0);
	return (NULL);
}

/* §2.6: close while enabled keeps recording until the thread exits. */
static void
close_while_enabled(void)
{
	pthread_t t;
	uint64_t n;
	int fd;

	pthread_create(&t, NULL, close_thread, NULL);
	pthread_join(t, NULL);
	n = load_count(shared_cover);
	kern_syscall(1);
	REQUIRE_MSG(load_count(shared_cover) == n, "records after exit");
	REQUIRE(munmap(shared_cover, page_size) == 0);
	fd = open_kcov();
	REQUIRE(ioctl(fd, KCOV_INIT_TRACE, 64) == 0);
	REQUIRE(ioctl(fd, KCOV_ENABLE, KCOV_TRACE_PC) == 0);
	REQUIRE(ioctl(fd, KCOV_DISABLE, 0) == 0);
	REQUIRE(close(fd) == 0);
}

/* §2.6 / kcov.rst: open, init and mmap once, children only enable. */
static void
fork_children(void)
{
	unsigned long *cover, i;
	pid_t pid;
	int fd, status, round;

	cover = setup(&fd, page_size / sizeof(unsigned long));
	REQUIRE(ioctl(fd, KCOV_ENABLE, KCOV_TRACE_PC) == 0);
	for (round = 0; round < 3; round++) {
		reset_count(cover);
		pid = fork();
		REQUIRE(pid != -1);
		if (pid == 0) {
			/* Coverage is not inherited: the child is unbound. */
			if (ioctl(fd, KCOV_ENABLE, KCOV_TRACE_PC) != -1 ||
			    errno != EINVAL)
				_exit(2);
			_exit(kern_syscall(1) < 0 ? 3 : 0);
		}
		REQUIRE(waitpid(pid, &status, 0) == pid);
		REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* The parent held fd; now hand it over. */
	REQUIRE(ioctl(fd, KCOV_DISABLE, 0) == 0);
	for (round = 0; round < 3; round++) {
		reset_count(cover);
		pid = fork();
		REQUIRE(pid != -1);
		if (pid == 0) {
			if (ioctl(fd, KCOV_ENABLE, KCOV_TRACE_PC) != 0)
				_exit(2);
			__atomic_store_n(&cover[0], 0, __ATOMIC_RELAXED);
			kern_syscall(1);
			_exit(0);	/* no KCOV_DISABLE */
		}
		REQUIRE(waitpid(pid, &status, 0) == pid);
		REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		REQUIRE_MSG(load_count(cover) > 0, "child's records missing");
		for (i = 1; i <= load_count(cover); i++)
			REQUIRE(kern_text_contains(cover[i]));
	}
	REQUIRE(ioctl(fd, KCOV_ENABLE, KCOV_TRACE_PC) == 0);
	REQUIRE(ioctl(fd, KCOV_DISABLE, 0) == 0);
	REQUIRE(close(fd) == 0);
}

/* §2.5: a full buffer drops silently; the count stops at size - 1. */
static void
full_buffer(void)
{
	unsigned long *cover;
	int fd, i;

	cover = setup(&fd, page_size / sizeof(unsigned long));
	REQUIRE(ioctl(fd, KCOV_ENABLE, KCOV_TRACE_PC) == 0);
	reset_count(cover);
	for (i = 0; i < 2000; i++)
		kern_syscall(i);
	REQUIRE(ioctl(fd, KCOV_DISABLE, 0) == 0);
	REQUIRE(load_count(cover) == page_size / sizeof(unsigned long) - 1);
	REQUIRE(ioctl(fd, KCOV_ENABLE, KCOV_TRACE_CMP) == 0);
	reset_count(cover);
	for (i = 0; i < 2000; i++)
		kern_syscall(i);
	REQUIRE(ioctl(fd, KCOV_DISABLE, 0) == 0);
	REQUIRE(load_count(cover) ==
	    (page_size / sizeof(unsigned long) - 1) / 4);
	REQUIRE(close(fd) == 0);
}

static const struct kt_case cases[] = {
	KT_CASE(doc_example_pc),
	KT_CASE(doc_example_cmp),
	KT_CASE(init_trace),
	KT_CASE(enable),
	KT_CASE(remote_enable),
	KT_CASE(mmap_rules),
	KT_CASE(exit_auto_disables),
	KT_CASE(close_while_enabled),
	KT_CASE(fork_children),
	KT_CASE(full_buffer),
};

int
main(int argc, char **argv)
{

	page_size = (size_t)sysconf(_SC_PAGESIZE);
	return (kt_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0])));
}
