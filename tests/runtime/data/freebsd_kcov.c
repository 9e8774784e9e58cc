/*
 * freebsd_kcov.c - FreeBSD's tests/sys/kern/kcov.c, ported to run on the
 * hosted kcov device under kcov-run (bsd-kcov.md §1.11).
 *
 * The 13 cases come in FreeBSD's registration order and make FreeBSD's
 * assertions; "a syscall" (sleep(0)) becomes a call into kern_syscall(), the
 * instrumented stand-in for the kernel.  This file itself is built without
 * coverage, so a thread blocked here records nothing, as a thread blocked in
 * the kernel records nothing on FreeBSD.  Where the "must not panic" cases
 * leave behaviour the spec does define (§1.9: a closed fd stops recording,
 * its thread cannot enable another fd until it exits), that is checked too.
 */
#include <sys/ioctl.h>
#include <sys/kcov.h>
#include <sys/mman.h>

#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>

#include "kern_target.h"
#include "kt.h"

static size_t page_size;

static int
open_kcov(void)
{
	int fd;

	fd = open("/dev/kcov", O_RDWR);
	/* FreeBSD skips here; under kcov-run the device must exist. */
	REQUIRE_MSG(fd != -1, "Failed to open /dev/kcov");
	return fd;
}

static void
kcov_bufsize(void)
{
	int fd;

	fd = open_kcov();
	REQUIRE(ioctl(fd, KIOSETBUFSIZE, 0) == -1);
	REQUIRE(ioctl(fd, KIOSETBUFSIZE, 1) == -1);
	REQUIRE(ioctl(fd, KIOSETBUFSIZE, 2) == 0);
	REQUIRE(ioctl(fd, KIOSETBUFSIZE, 2) == -1);
	close(fd);
}

static void
kcov_mmap(void)
{
	void *data1, *data2;
	int fd;

	fd = open_kcov();

	REQUIRE(mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0) == MAP_FAILED);

	REQUIRE(ioctl(fd, KIOSETBUFSIZE,
	    2 * page_size / KCOV_ENTRY_SIZE) == 0);

	REQUIRE(mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0) == MAP_FAILED);
	REQUIRE(mmap(NULL, 3 * page_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0) == MAP_FAILED);
	REQUIRE((data1 = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0)) != MAP_FAILED);
	REQUIRE((data2 = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0)) != MAP_FAILED);

	*(uint64_t *)data1 = 0x123456789abcdef;
	REQUIRE(*(uint64_t *)data2 == 0x123456789abcdef);
	*(uint64_t *)data2 = 0xfedcba9876543210;
	REQUIRE(*(uint64_t *)data1 == 0xfedcba9876543210);

	munmap(data1, 2 * page_size);
	munmap(data2, 2 * page_size);

	close(fd);
}

/* This shouldn't panic */
static void
kcov_mmap_no_munmap(void)
{
	int fd;

	fd = open_kcov();
	REQUIRE(ioctl(fd, KIOSETBUFSIZE, page_size / KCOV_ENTRY_SIZE) == 0);
	REQUIRE(mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0) != MAP_FAILED);
	close(fd);
}

static void
kcov_mmap_no_munmap_no_close(void)
{
	int fd;

	fd = open_kcov();
	REQUIRE(ioctl(fd, KIOSETBUFSIZE, page_size / KCOV_ENTRY_SIZE) == 0);
	REQUIRE(mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0) != MAP_FAILED);
}

static void
kcov_enable(void)
{
	int fd;

	fd = open_kcov();

	REQUIRE(ioctl(fd, KIOENABLE, KCOV_MODE_TRACE_PC) == -1);

	REQUIRE(ioctl(fd, KIOSETBUFSIZE, page_size / KCOV_ENTRY_SIZE) == 0);

	/* We need to enable before disable */
	REQUIRE(ioctl(fd, KIODISABLE, 0) == -1);

	/* Check enabling works only with a valid trace method */
	REQUIRE(ioctl(fd, KIOENABLE, -1) == -1);
	REQUIRE(ioctl(fd, KIOENABLE, KCOV_MODE_TRACE_PC) == 0);
	REQUIRE(ioctl(fd, KIOENABLE, KCOV_MODE_TRACE_PC) == -1);
	REQUIRE(ioctl(fd, KIOENABLE, KCOV_MODE_TRACE_CMP) == -1);

	/* Disable should only be called once */
	REQUIRE(ioctl(fd, KIODISABLE, 0) == 0);
	REQUIRE(ioctl(fd, KIODISABLE, 0) == -1);

	/* Re-enabling should also work */
	REQUIRE(ioctl(fd, KIOENABLE, KCOV_MODE_TRACE_CMP) == 0);
	REQUIRE(ioctl(fd, KIODISABLE, 0) == 0);

	/* Beyond FreeBSD's test: any other command is EINVAL (§1.6). */
	REQUIRE_ERRNO(EINVAL, ioctl(fd, KIODISABLE + 2, 0) == -1);

	close(fd);
}

static void
kcov_enable_no_disable(void)
{
	int fd;

	fd = open_kcov();
	REQUIRE(ioctl(fd, KIOSETBUFSIZE, page_size / KCOV_ENTRY_SIZE) == 0);
	REQUIRE(ioctl(fd, KIOENABLE, KCOV_MODE_TRACE_PC) == 0);
	close(fd);
}

static void
kcov_enable_no_disable_no_close(void)
{
	int fd;

	fd = open_kcov();
	REQUIRE(ioctl(fd, KIOSETBUFSIZE, page_size / KCOV_ENTRY_SIZE) == 0);
	REQUIRE(ioctl(fd, KIOENABLE, KCOV_MODE_TRACE_PC) == 0);
}

static sem_t sem1, sem2;
static uint64_t *thread_buf;

static void *
kcov_mmap_enable_thread(void *data)
{
	uint64_t before;
	int fd, fd2;

	fd = open_kcov();
	*(int *)data = fd;

	REQUIRE(ioctl(fd, KIOSETBUFSIZE, page_size / KCOV_ENTRY_SIZE) == 0);
	REQUIRE((thread_buf = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0)) != MAP_FAILED);
	REQUIRE(ioctl(fd, KIOENABLE, KCOV_MODE_TRACE_PC) == 0);

	sem_post(&sem1);
	sem_wait(&sem2);

	/*
	 * The main thread closed the fd while this thread runs it: the
	 * descriptor is DYING, so recording has stopped (the mapping stays
	 * valid), and this thread still holds it, so it cannot enable a
	 * second descriptor until it exits (bsd-kcov.md §1.9).
	 */
	before = atomic_load_explicit((_Atomic uint64_t *)&thread_buf[0],
	    memory_order_relaxed);
	kern_syscall(3);
	REQUIRE_MSG(atomic_load_explicit((_Atomic uint64_t *)&thread_buf[0],
	    memory_order_relaxed) == before, "Records after close");
	fd2 = open_kcov();
	REQUIRE(ioctl(fd2, KIOSETBUFSIZE, page_size / KCOV_ENTRY_SIZE) == 0);
	REQUIRE_ERRNO(EINVAL, ioctl(fd2, KIOENABLE, KCOV_MODE_TRACE_PC) == -1);
	close(fd2);

	return NULL;
}

static void
kcov_mmap_enable_thread_close(void)
{
	pthread_t thread;
	int fd, fd2;

	sem_init(&sem1, 0, 0);
	sem_init(&sem2, 0, 0);
	pthread_create(&thread, NULL, kcov_mmap_enable_thread, &fd);
	sem_wait(&sem1);
	close(fd);
	sem_post(&sem2);
	pthread_join(thread, NULL);

	/* The dying descriptor was freed with its thread. */
	fd2 = open_kcov();
	REQUIRE(ioctl(fd2, KIOSETBUFSIZE, page_size / KCOV_ENTRY_SIZE) == 0);
	REQUIRE(ioctl(fd2, KIOENABLE, KCOV_MODE_TRACE_PC) == 0);
	REQUIRE(ioctl(fd2, KIODISABLE, 0) == 0);
	close(fd2);
}

static uint64_t *
common_head(int *fdp)
{
	void *data;
	int fd;

	fd = open_kcov();

	REQUIRE_MSG(ioctl(fd, KIOSETBUFSIZE, page_size / KCOV_ENTRY_SIZE) == 0,
	    "Unable to set the kcov buffer size");

	data = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE_MSG(data != MAP_FAILED, "Unable to mmap the kcov buffer");

	*fdp = fd;
	return (data);
}

static void
common_tail(int fd, uint64_t *data)
{

	REQUIRE_MSG(munmap(data, page_size) == 0,
	    "Unable to unmap the kcov buffer");

	close(fd);
}

static uint64_t
load_count(uint64_t *buf)
{
	return (atomic_load_explicit((_Atomic uint64_t *)&buf[0],
	    memory_order_relaxed));
}

static void
store_count(uint64_t *buf, uint64_t v)
{
	atomic_store_explicit((_Atomic uint64_t *)&buf[0], v,
	    memory_order_relaxed);
}

/* Beyond FreeBSD's test: the records must be well-formed for the mode. */
static void
check_records(uint64_t *buf, int mode)
{
	uint64_t i, n = load_count(buf);

	if (mode == KCOV_MODE_TRACE_PC) {
		REQUIRE(n <= page_size / KCOV_ENTRY_SIZE - 1);
		for (i = 1; i <= n; i++)
			REQUIRE_MSG(kern_text_contains(buf[i]),
			    "PC outside the instrumented code");
	} else {
		REQUIRE(n <= (page_size / KCOV_ENTRY_SIZE - 1) / 4);
		for (i = 0; i < n; i++) {
			REQUIRE((buf[1 + 4 * i] & ~(uint64_t)(KCOV_CMP_CONST |
			    KCOV_CMP_MASK)) == 0);
			REQUIRE(kern_text_contains(buf[4 + 4 * i]));
		}
	}
}

static void
kcov_basic(int mode)
{
	uint64_t *buf;
	int fd;

	buf = common_head(&fd);
	REQUIRE_MSG(ioctl(fd, KIOENABLE, mode) == 0,
	    "Unable to enable kcov ");

	store_count(buf, 0);

	kern_syscall(1);
	REQUIRE_MSG(load_count(buf) != 0, "No records found");
	check_records(buf, mode);

	REQUIRE_MSG(ioctl(fd, KIODISABLE, 0) == 0,
	    "Unable to disable kcov");

	common_tail(fd, buf);
}

static void
kcov_basic_pc(void)
{

	kcov_basic(KCOV_MODE_TRACE_PC);
}

static void
kcov_basic_cmp(void)
{

	kcov_basic(KCOV_MODE_TRACE_CMP);
}

static void *
thread_test_helper(void *ptr)
{
	uint64_t *buf = ptr;

	store_count(buf, 0);
	kern_syscall(1);
	REQUIRE_MSG(load_count(buf) == 0,
	    "Records changed in blocked thread");

	return (NULL);
}

static void
kcov_thread(int mode)
{
	pthread_t thread;
	uint64_t *buf;
	int fd;

	buf = common_head(&fd);

	REQUIRE_MSG(ioctl(fd, KIOENABLE, mode) == 0,
	    "Unable to enable kcov ");

	pthread_create(&thread, NULL, thread_test_helper, buf);
	pthread_join(thread, NULL);

	REQUIRE_MSG(ioctl(fd, KIODISABLE, 0) == 0,
	    "Unable to disable kcov");

	common_tail(fd, buf);
}

static void
kcov_thread_pc(void)
{

	kcov_thread(KCOV_MODE_TRACE_PC);
}

static void
kcov_thread_cmp(void)
{

	kcov_thread(KCOV_MODE_TRACE_CMP);
}

struct multi_thread_data {
	uint64_t *buf;
	int fd;
	int mode;
	int thread;
};

static void *
multi_thread_test_helper(void *ptr)
{
	struct multi_thread_data *data = ptr;

	REQUIRE_MSG(ioctl(data->fd, KIOENABLE, data->mode) == 0,
	    "Unable to enable kcov ");

	store_count(data->buf, 0);

	kern_syscall(1);
	REQUIRE_MSG(load_count(data->buf) != 0, "No records found");
	check_records(data->buf, data->mode);

	/* Exit without KIODISABLE: the fd must return to READY. */
	return (NULL);
}

static void
kcov_enable_multi_thread(void)
{
	struct multi_thread_data data;
	pthread_t thread;

	data.buf = common_head(&data.fd);

	/* Run the thread to completion */
	data.thread = 1;
	data.mode = KCOV_MODE_TRACE_PC;
	pthread_create(&thread, NULL, multi_thread_test_helper, &data);
	pthread_join(thread, NULL);

	/* Run it again to check enable works on the same fd */
	data.thread = 2;
	data.mode = KCOV_MODE_TRACE_CMP;
	pthread_create(&thread, NULL, multi_thread_test_helper, &data);
	pthread_join(thread, NULL);

	common_tail(data.fd, data.buf);
}

static const struct kt_case cases[] = {
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
	KT_CASE(kcov_thread_pc),
	KT_CASE(kcov_thread_cmp),
	KT_CASE(kcov_enable_multi_thread),
};

int
main(int argc, char **argv)
{

	page_size = (size_t)sysconf(_SC_PAGESIZE);
	return (kt_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0])));
}
