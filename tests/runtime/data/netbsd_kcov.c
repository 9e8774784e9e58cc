/*
 * netbsd_kcov.c - NetBSD's tests/modules/t_kcov.c (bsd-kcov.md §2.4), ported
 * to run on the hosted kcov device under "kcov-run --abi netbsd".
 *
 * The cases keep t_kcov.c's names, order and assertions; sleep(0) and
 * getpid() become calls into kern_syscall(), the instrumented stand-in for
 * the kernel, and the two "GCC8 needed" CMP cases run.  Where t_kcov.c only
 * checks for -1, the errno NetBSD's subr_kcov.c returns (§2.2) is checked
 * as well, and the last two cases pin behaviour t_kcov.c leaves implicit:
 * NONE mode records nothing, and a descriptor closed while enabled keeps
 * recording until its LWP exits.
 */
#include <sys/ioctl.h>
#include <sys/kcov.h>
#include <sys/mman.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "kern_target.h"
#include "kt.h"

#define	PAGE_SIZE	sysconf(_SC_PAGESIZE)
#define	__UNVOLATILE(p)	((void *)(uintptr_t)(p))
#define	__arraycount(a)	(sizeof(a) / sizeof(a[0]))

static int
open_kcov(void)
{
	int fd;

	fd = open("/dev/kcov", O_RDWR);
	REQUIRE_MSG(fd != -1, "Failed to open /dev/kcov");
	return fd;
}

static int
pick_unassigned_fd(int greater_than_fd)
{
	int fd2;

	fd2 = greater_than_fd;
	do {
		++fd2;
	} while (fcntl(fd2, F_GETFL) != -1 || errno != EBADF);

	return fd2;
}

static void
kcov_dup2(void)
{
	int fd1, fd2;
	uint64_t size = 2;

	fd1 = open_kcov();
	fd2 = pick_unassigned_fd(fd1);

	/* Test the dup2(2) trick used by syzkaller */
	REQUIRE(dup2(fd1, fd2) == fd2);

	close(fd1);
	/* The open file survives under the new number. */
	REQUIRE(ioctl(fd2, KCOV_IOC_SETBUFSIZE, &size) == 0);
	close(fd2);
}

static void
kcov_multiopen(void)
{
	int fd1, fd2;
	uint64_t size = 2;

	fd1 = open_kcov();

	fd2 = open("/dev/kcov", O_RDWR);
	REQUIRE(fd2 != -1);

	/* Each open is its own descriptor. */
	REQUIRE(ioctl(fd1, KCOV_IOC_SETBUFSIZE, &size) == 0);
	REQUIRE(ioctl(fd2, KCOV_IOC_SETBUFSIZE, &size) == 0);

	close(fd1);
	close(fd2);
}

static void
kcov_open_close_open(void)
{
	int fd;

	fd = open_kcov();
	close(fd);
	fd = open("/dev/kcov", O_RDWR);
	REQUIRE(fd != -1);

	close(fd);
}

static void
kcov_bufsize(void)
{
	int fd;
	uint64_t size;

	fd = open_kcov();

	size = 0;
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_IOC_SETBUFSIZE, &size) == -1);
	size = (256 << 10) + 1;
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_IOC_SETBUFSIZE, &size) == -1);
	size = 2;
	REQUIRE(ioctl(fd, KCOV_IOC_SETBUFSIZE, &size) == 0);
	REQUIRE_ERRNO(EEXIST, ioctl(fd, KCOV_IOC_SETBUFSIZE, &size) == -1);

	close(fd);
}

static void
kcov_mmap(void)
{
	void *data;
	int fd;
	uint64_t size = 2 * PAGE_SIZE / KCOV_ENTRY_SIZE;

	fd = open_kcov();

	REQUIRE(mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0) == MAP_FAILED);

	REQUIRE(ioctl(fd, KCOV_IOC_SETBUFSIZE, &size) == 0);

	REQUIRE((data = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0)) != MAP_FAILED);

	munmap(data, 2 * PAGE_SIZE);

	close(fd);
}

/* This shouldn't panic */
static void
kcov_mmap_no_munmap(void)
{
	int fd;
	uint64_t size = PAGE_SIZE / KCOV_ENTRY_SIZE;

	fd = open_kcov();

	REQUIRE(ioctl(fd, KCOV_IOC_SETBUFSIZE, &size) ==0);

	REQUIRE(mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0) != MAP_FAILED);

	close(fd);
}

static void
kcov_mmap_no_munmap_no_close(void)
{
	int fd;
	uint64_t size = PAGE_SIZE / KCOV_ENTRY_SIZE;

	fd = open_kcov();

	REQUIRE(ioctl(fd, KCOV_IOC_SETBUFSIZE, &size) ==0);

	REQUIRE(mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0) != MAP_FAILED);
}

static sem_t sem1, sem2;

static void *
kcov_mmap_enable_thread(void *data)
{
	int fd;
	uint64_t size = PAGE_SIZE / KCOV_ENTRY_SIZE;
	int mode;

	fd = open_kcov();
	*(int *)data = fd;

	REQUIRE(ioctl(fd, KCOV_IOC_SETBUFSIZE, &size) ==0);
	REQUIRE(mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0) != MAP_FAILED);
	mode = KCOV_MODE_NONE;
	REQUIRE(ioctl(fd, KCOV_IOC_ENABLE, &mode) == 0);

	sem_post(&sem1);
	sem_wait(&sem2);

	return NULL;
}

static void
kcov_mmap_enable_thread_close(void)
{
	pthread_t thread;
	int fd;

	sem_init(&sem1, 0, 0);
	sem_init(&sem2, 0, 0);
	pthread_create(&thread, NULL,
	    kcov_mmap_enable_thread, &fd);
	sem_wait(&sem1);
	close(fd);
	sem_post(&sem2);
	pthread_join(thread, NULL);
}

static void
kcov_enable(void)
{
	int fd;
	uint64_t size = PAGE_SIZE / KCOV_ENTRY_SIZE;
	int mode;

	fd = open_kcov();

	mode = KCOV_MODE_NONE;
	REQUIRE_ERRNO(ENOBUFS, ioctl(fd, KCOV_IOC_ENABLE, &mode) == -1);

	REQUIRE(ioctl(fd, KCOV_IOC_SETBUFSIZE, &size) ==0);

	/* We need to enable before disable */
	REQUIRE_ERRNO(ENOENT, ioctl(fd, KCOV_IOC_DISABLE) == -1);

	/* Check enabling works only with a valid trace method */
	mode = 3;
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_IOC_ENABLE, &mode) == -1);
	mode = KCOV_MODE_NONE;
	REQUIRE(ioctl(fd, KCOV_IOC_ENABLE, &mode) == 0);
	REQUIRE_ERRNO(EBUSY, ioctl(fd, KCOV_IOC_ENABLE, &mode) == -1);
	/* Not while enabled. */
	REQUIRE_ERRNO(EBUSY, ioctl(fd, KCOV_IOC_SETBUFSIZE, &size) == -1);

	/* Disable should only be called once */
	REQUIRE(ioctl(fd, KCOV_IOC_DISABLE) == 0);
	REQUIRE_ERRNO(ENOENT, ioctl(fd, KCOV_IOC_DISABLE) == -1);

	/* Re-enabling and changing mode should also work */
	mode = KCOV_MODE_NONE;
	REQUIRE(ioctl(fd, KCOV_IOC_ENABLE, &mode) == 0);
	REQUIRE(ioctl(fd, KCOV_IOC_DISABLE) == 0);
	mode = KCOV_MODE_TRACE_PC;
	REQUIRE(ioctl(fd, KCOV_IOC_ENABLE, &mode) == 0);
	REQUIRE(ioctl(fd, KCOV_IOC_DISABLE) == 0);
	mode = KCOV_MODE_TRACE_CMP;
	REQUIRE(ioctl(fd, KCOV_IOC_ENABLE, &mode) == 0);
	REQUIRE(ioctl(fd, KCOV_IOC_DISABLE) == 0);

	/* Unknown commands are EINVAL on NetBSD. */
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KCOV_IOC_DISABLE + 100) == -1);

	close(fd);
}

static void
kcov_enable_no_disable(void)
{
	int fd;
	uint64_t size = PAGE_SIZE / KCOV_ENTRY_SIZE;
	int mode;

	fd = open_kcov();
	REQUIRE(ioctl(fd, KCOV_IOC_SETBUFSIZE, &size) ==0);
	mode = KCOV_MODE_NONE;
	REQUIRE(ioctl(fd, KCOV_IOC_ENABLE, &mode) == 0);
	close(fd);
}

static void
kcov_enable_no_disable_no_close(void)
{
	int fd;
	uint64_t size = PAGE_SIZE / KCOV_ENTRY_SIZE;
	int mode;

	fd = open_kcov();
	REQUIRE(ioctl(fd, KCOV_IOC_SETBUFSIZE, &size) ==0);
	mode = KCOV_MODE_NONE;
	REQUIRE(ioctl(fd, KCOV_IOC_ENABLE, &mode) == 0);
}

static void *
common_head_raw(bool fd_dup, int *fdp)
{
	void *data;
	int fd, fd2;
	uint64_t size = PAGE_SIZE / KCOV_ENTRY_SIZE;

	fd = open_kcov();

	/* Test the dup2(2) trick used by syzkaller */
	if (fd_dup) {
		fd2 = pick_unassigned_fd(fd);
		REQUIRE(dup2(fd, fd2) == fd2);
		close(fd);
		fd = fd2;
	}

	REQUIRE_MSG(ioctl(fd, KCOV_IOC_SETBUFSIZE, &size) == 0,
	    "Unable to set the kcov buffer size");

	data = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE_MSG(data != MAP_FAILED, "Unable to mmap the kcov buffer");

	*fdp = fd;
	return data;
}

static void *
common_head(int *fdp)
{

	return common_head_raw(false, fdp);
}

static void
common_tail(int fd, kcov_int_t *data)
{

	REQUIRE_MSG(munmap(__UNVOLATILE(data), PAGE_SIZE) == 0,
	    "Unable to unmap the kcov buffer");

	close(fd);
}

static void
kcov_basic(bool fd_dup, int mode)
{
	kcov_int_t *buf;
	uint64_t i, n;
	int fd;

	buf = common_head_raw(fd_dup, &fd);
	REQUIRE_MSG(ioctl(fd, KCOV_IOC_ENABLE, &mode) == 0,
	    "Unable to enable kcov ");

	KCOV_STORE(buf[0], 0);

	kern_syscall(1);
	REQUIRE_MSG(KCOV_LOAD(buf[0]) != 0, "No records found");
	n = KCOV_LOAD(buf[0]);
	for (i = 0; i < n; i++) {
		if (mode == KCOV_MODE_TRACE_PC)
			REQUIRE(kern_text_contains(buf[i + 1]));
		else
			REQUIRE(buf[4 * i + 1] <= 7 &&
			    kern_text_contains(buf[4 * i + 4]));
	}

	REQUIRE_MSG(ioctl(fd, KCOV_IOC_DISABLE) == 0,
	    "Unable to disable kcov");

	common_tail(fd, buf);
}

static void
kcov_basic_pc(void)
{

	kcov_basic(false, KCOV_MODE_TRACE_PC);
}

static void
kcov_basic_cmp(void)
{

	kcov_basic(false, KCOV_MODE_TRACE_CMP);
}

static void
kcov_basic_dup2_pc(void)
{

	kcov_basic(true, KCOV_MODE_TRACE_PC);
}

static void
kcov_basic_dup2_cmp(void)
{

	kcov_basic(true, KCOV_MODE_TRACE_CMP);
}

static void
kcov_multienable_on_the_same_thread(void)
{
	kcov_int_t *buf1, *buf2;
	int fd1, fd2;
	int mode;

	buf1 = common_head(&fd1);
	buf2 = common_head(&fd2);
	mode = KCOV_MODE_NONE;
	REQUIRE_MSG(ioctl(fd1, KCOV_IOC_ENABLE, &mode) == 0,
	    "Unable to enable kcov");
	REQUIRE_ERRNO(EBUSY, ioctl(fd2, KCOV_IOC_ENABLE, &mode) != 0);

	REQUIRE_MSG(ioctl(fd1, KCOV_IOC_DISABLE) == 0,
	    "Unable to disable kcov");

	common_tail(fd1, buf1);
	common_tail(fd2, buf2);
}

static void *
thread_buffer_access_test_helper(void *ptr)
{
	kcov_int_t *buf = ptr;

	/* Test mapped buffer access from a custom thread */
	KCOV_STORE(buf[0], KCOV_LOAD(buf[0]));

	return NULL;
}

static void
kcov_buffer_access_from_custom_thread(void)
{
	pthread_t thread;
	kcov_int_t *buf;
	int fd;
	int mode;

	buf = common_head(&fd);

	mode = KCOV_MODE_TRACE_PC;
	REQUIRE_MSG(ioctl(fd, KCOV_IOC_ENABLE, &mode) == 0,
	    "Unable to enable kcov ");

	pthread_create(&thread, NULL, thread_buffer_access_test_helper,
	    __UNVOLATILE(buf));
	pthread_join(thread, NULL);

	REQUIRE_MSG(ioctl(fd, KCOV_IOC_DISABLE) == 0,
	    "Unable to disable kcov");

	common_tail(fd, buf);
}

static void *
thread_test_helper(void *ptr)
{
	volatile int i;

	(void)ptr;
	/* It does not matter what operation is in action. */
	for (i = 0; i < 1000; i++) {
		if (kern_syscall(i) < 0)
			break;
	}

	return NULL;
}

static void
kcov_thread(void)
{
	pthread_t thread;
	kcov_int_t *buf;
	int fd;
	int mode;
	volatile int i;

	buf = common_head(&fd);

	mode = KCOV_MODE_TRACE_PC;
	REQUIRE_MSG(ioctl(fd, KCOV_IOC_ENABLE, &mode) == 0,
	    "Unable to enable kcov ");

	/* The thread does something, does not matter what exactly. */
	pthread_create(&thread, NULL, thread_test_helper, __UNVOLATILE(buf));

	KCOV_STORE(buf[0], 0);
	for (i = 0; i < 10000; i++)
		continue;
	/* Join first, so the helper's 1000 calls have all been made. */
	pthread_join(thread, NULL);
	REQUIRE_MSG(KCOV_LOAD(buf[0]) == 0,
	    "Records changed in blocked thread");

	REQUIRE_MSG(ioctl(fd, KCOV_IOC_DISABLE) == 0,
	    "Unable to disable kcov");

	common_tail(fd, buf);
}

static void *
multiple_threads_helper(void *ptr)
{
	kcov_int_t *buf;
	int fd;
	int mode;

	(void)ptr;
	buf = common_head(&fd);
	mode = KCOV_MODE_TRACE_PC;
	REQUIRE_MSG(ioctl(fd, KCOV_IOC_ENABLE, &mode) == 0,
	    "Unable to enable kcov ");

	KCOV_STORE(buf[0], 0);

	kern_syscall(1);
	REQUIRE_MSG(KCOV_LOAD(buf[0]) != 0, "No records found");
	REQUIRE(kern_text_contains(buf[1]));

	REQUIRE_MSG(ioctl(fd, KCOV_IOC_DISABLE) == 0,
	    "Unable to disable kcov");

	common_tail(fd, buf);

	return NULL;
}

static void
kcov_multiple_threads(size_t N)
{
	pthread_t thread[32];
	size_t i;

	REQUIRE(__arraycount(thread) >= N);

	for (i = 0; i < N; i++)
		pthread_create(&thread[i], NULL, multiple_threads_helper, NULL);

	for (i = 0; i < N; i++)
		pthread_join(thread[i], NULL);
}

#define KCOV_MULTIPLE_THREADS(n)			\
static void						\
kcov_multiple_threads##n(void)				\
{							\
							\
	kcov_multiple_threads(n);			\
}

KCOV_MULTIPLE_THREADS(2)
KCOV_MULTIPLE_THREADS(4)
KCOV_MULTIPLE_THREADS(8)
KCOV_MULTIPLE_THREADS(16)
KCOV_MULTIPLE_THREADS(32)

/* Beyond t_kcov.c: KCOV_MODE_NONE is enabled but records nothing. */
static void
kcov_enable_none_records_nothing(void)
{
	kcov_int_t *buf;
	int fd, mode;

	buf = common_head(&fd);
	mode = KCOV_MODE_NONE;
	REQUIRE(ioctl(fd, KCOV_IOC_ENABLE, &mode) == 0);
	KCOV_STORE(buf[0], 0);
	kern_syscall(1);
	REQUIRE_MSG(KCOV_LOAD(buf[0]) == 0, "Records in NONE mode");
	REQUIRE(ioctl(fd, KCOV_IOC_DISABLE) == 0);
	common_tail(fd, buf);
}

static kcov_int_t *closed_buf;

static void *
close_enabled_thread(void *ptr)
{
	kcov_int_t *buf2;
	int fd, fd2, mode;

	(void)ptr;
	closed_buf = common_head(&fd);
	mode = KCOV_MODE_TRACE_PC;
	REQUIRE(ioctl(fd, KCOV_IOC_ENABLE, &mode) == 0);
	close(fd);
	/* lwpfree: the descriptor lives, and records, until LWP exit. */
	KCOV_STORE(closed_buf[0], 0);
	kern_syscall(1);
	REQUIRE_MSG(KCOV_LOAD(closed_buf[0]) != 0, "No records after close");
	buf2 = common_head(&fd2);
	REQUIRE_ERRNO(EBUSY, ioctl(fd2, KCOV_IOC_ENABLE, &mode) == -1);
	common_tail(fd2, buf2);
	return NULL;
}

/* Beyond t_kcov.c: close while enabled defers the free to LWP exit. */
static void
kcov_close_enabled_records_until_exit(void)
{
	pthread_t thread;
	uint64_t n;

	pthread_create(&thread, NULL, close_enabled_thread, NULL);
	pthread_join(thread, NULL);
	n = KCOV_LOAD(closed_buf[0]);
	kern_syscall(1);
	REQUIRE_MSG(KCOV_LOAD(closed_buf[0]) == n, "Records after exit");
	munmap(__UNVOLATILE(closed_buf), PAGE_SIZE);
}

static const struct kt_case cases[] = {
	KT_CASE(kcov_dup2),
	KT_CASE(kcov_multiopen),
	KT_CASE(kcov_open_close_open),
	KT_CASE(kcov_bufsize),
	KT_CASE(kcov_mmap),
	KT_CASE(kcov_mmap_no_munmap),
	KT_CASE(kcov_mmap_no_munmap_no_close),
	KT_CASE(kcov_enable),
	KT_CASE(kcov_enable_no_disable),
	KT_CASE(kcov_enable_no_disable_no_close),
	KT_CASE(kcov_mmap_enable_thread_close),
	KT_CASE(kcov_basic_pc),
	KT_CASE(kcov_basic_cmp),
	KT_CASE(kcov_basic_dup2_pc),
	KT_CASE(kcov_basic_dup2_cmp),
	KT_CASE(kcov_multienable_on_the_same_thread),
	KT_CASE(kcov_buffer_access_from_custom_thread),
	KT_CASE(kcov_thread),
	KT_CASE(kcov_multiple_threads2),
	KT_CASE(kcov_multiple_threads4),
	KT_CASE(kcov_multiple_threads8),
	KT_CASE(kcov_multiple_threads16),
	KT_CASE(kcov_multiple_threads32),
	KT_CASE(kcov_enable_none_records_nothing),
	KT_CASE(kcov_close_enabled_records_until_exit),
};

int
main(int argc, char **argv)
{

	return kt_main(argc, argv, cases, __arraycount(cases));
}
