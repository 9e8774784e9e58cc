/*
 * device.c - the hosted kcov device: the engine's platform glue for a
 * user-space process, and the kcovrt_* API of include/kcovrt.h.
 *
 * A descriptor is a memfd.  Its first page holds the engine's struct
 * kcov_desc, the rest is the buffer.  Both are mapped MAP_SHARED by the
 * runtime, so a forked child and its parent see one descriptor, one state
 * and one buffer, exactly as two processes sharing a kernel file would.  The
 * runtime records through its own mapping, never through the client's, so a
 * client's mprotect(PROT_READ) does not stop recording (syzkaller relies on
 * it, bsd-kcov.md §4.2).
 *
 * The "last close" of the open file (FreeBSD's cdevpriv destructor) is seen
 * through flock(): every open file holds a shared lock, which the kernel
 * drops when the last descriptor of that open file, in any process, is
 * closed.  The runtime maps the memfd only through separate open files
 * (reopened via /proc/self/fd), so its mappings do not keep the lock alive.
 *
 * Raw syscalls are used for close, mmap, ioctl and friends, because
 * kcov-run's preload library interposes the libc wrappers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../engine.h"
#include "../platform.h"
#include "kcov_td.h"
#include "kcovrt.h"

#define KCOVRT_API __attribute__((visibility("default")))

__thread struct kcov_thread kcov_td __attribute__((tls_model("initial-exec")));

/* The header page of a descriptor's memfd. */
struct kcov_hosted_hdr {
	struct kcov_desc desc;
	uint32_t personality;
};

/* Descriptors this process knows, keyed by the memfd's inode. */
struct kcov_known {
	dev_t dev;
	ino_t ino;
	struct kcov_hosted_hdr *hdr;
};

#define KCOV_KNOWN_MAX 1024
static struct kcov_known known[KCOV_KNOWN_MAX];
static int known_count;
static uint32_t known_lock;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static long page_size;

/* --- Raw system calls ---------------------------------------------------- */

static int
sys_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

static void *
sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static int
sys_fstat(int fd, struct stat *st)
{
	return (int)syscall(SYS_fstat, fd, st);
}

static pid_t
sys_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* A new open file on the same memfd, for mappings and the last-close probe. */
static int
reopen_fd(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return (int)syscall(SYS_openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC);
}

static void *
map_region(int fd, off_t off, size_t len, int prot, int flags, void *addr)
{
	int mfd = reopen_fd(fd);
	void *p;

	/* Without /proc, map the open file itself and lose only the probe. */
	p = sys_mmap(addr, len, prot, flags, mfd >= 0 ? mfd : fd, off);
	if (mfd >= 0)
		sys_close(mfd);
	return p;
}

/* --- The table of known descriptors -------------------------------------- */

static void
known_lock_acquire(void)
{
	while (__atomic_exchange_n(&known_lock, 1, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void
known_lock_release(void)
{
	__atomic_store_n(&known_lock, 0, __ATOMIC_RELEASE);
}

static struct kcov_hosted_hdr *
known_find(int fd)
{
	struct kcov_hosted_hdr *hdr = NULL;
	struct stat st;
	int i;

	if (__atomic_load_n(&known_count, __ATOMIC_ACQUIRE) == 0 || fd < 0)
		return NULL;
	if (sys_fstat(fd, &st) != 0)
		return NULL;
	known_lock_acquire();
	for (i = 0; i < known_count; i++) {
		if (known[i].dev == st.st_dev && known[i].ino == st.st_ino) {
			hdr = known[i].hdr;
			break;
		}
	}
	known_lock_release();
	return hdr;
}

static int
known_add(int fd, struct kcov_hosted_hdr *hdr)
{
	struct stat st;
	int ok = 0;

	if (sys_fstat(fd, &st) != 0)
		return -1;
	known_lock_acquire();
	if (known_count < KCOV_KNOWN_MAX) {
		known[known_count].dev = st.st_dev;
		known[known_count].ino = st.st_ino;
		known[known_count].hdr = hdr;
		__atomic_store_n(&known_count, known_count + 1,
		    __ATOMIC_RELEASE);
		ok = 1;
	}
	known_lock_release();
	return ok ? 0 : -1;
}

static void
known_remove(struct kcov_hosted_hdr *hdr)
{
	int i;

	known_lock_acquire();
	for (i = 0; i < known_count; i++) {
		if (known[i].hdr == hdr) {
			known[i] = known[known_count - 1];
			__atomic_store_n(&known_count, known_count - 1,
			    __ATOMIC_RELEASE);
			break;
		}
	}
	known_lock_release();
}

/* Unmap a descriptor from this process: the engine has let go of it. */
static void
hosted_free(struct kcov_desc *d)
{
	struct kcov_hosted_hdr *hdr = (struct kcov_hosted_hdr *)d;

	known_remove(hdr);
	if (d->kbuf != NULL)
		munmap(d->kbuf, d->bufsize);
	munmap(hdr, (size_t)page_size);
}

/* --- Thread and process lifetime ----------------------------------------- */

static void
exit_key_dtor(void *p)
{
	struct kcov_desc *dead = kcov_thread_exit((struct kcov_thread *)p);

	if (dead != NULL)
		hosted_free(dead);
}

/* exit() runs no key destructors for the thread that calls it. */
static void
exit_main_thread(void)
{
	exit_key_dtor(&kcov_td);
}

static void
exit_key_create(void)
{
	pthread_key_create(&exit_key, exit_key_dtor);
	atexit(exit_main_thread);
}

/* A forked child's thread starts untraced, like FreeBSD's zeroed td. */
static void
atfork_child(void)
{
	kcov_td.desc = NULL;
	known_lock = 0;
}

__attribute__((constructor)) static void
kcov_hosted_init(void)
{
	const char *s;

	page_size = sysconf(_SC_PAGESIZE);
	s = getenv("KCOV_MAX_ENTRIES");
	if (s != NULL && *s != '\0')
		kcov_max_entries = strtoull(s, NULL, 0);
	pthread_atfork(NULL, NULL, atfork_child);
}

/* --- Platform interface (platform.h) ------------------------------------- */

int
kcov_plat_buf_alloc(struct kcov_desc *d, uint64_t bytes, void *pctx)
{
	int fd = *(int *)pctx;
	void *p;

	if (syscall(SYS_ftruncate, fd, (off_t)(page_size + bytes)) != 0)
		return ENOMEM;
	p = map_region(fd, page_size, bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
	    NULL);
	if (p == MAP_FAILED)
		return ENOMEM;
	d->kbuf = p;
	return 0;
}

uint64_t
kcov_plat_pagesize(void)
{
	return (uint64_t)page_size;
}

/* Field 22 of /proc/PID/task/TID/stat, and the state letter (field 3). */
static int
read_thread_stat(int64_t pid, int64_t tid, uint64_t *start, char *state)
{
	char path[96], buf[1024], *p;
	unsigned long long v = 0;
	int fd, i;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%lld/task/%lld/stat",
	    (long long)pid, (long long)tid);
	fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	sys_close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* The command name may contain spaces; fields restart after ')'. */
	p = strrchr(buf, ')');
	if (p == NULL || p[1] == '\0')
		return -1;
	p += 2;
	*state = *p;
	for (i = 3; i < 22 && p != NULL; i++) {
		p = strchr(p, ' ');
		if (p != NULL)
			p++;
	}
	if (p == NULL)
		return -1;
	sscanf(p, "%llu", &v);
	*start = v;
	return 0;
}

void
kcov_plat_owner_set(struct kcov_owner *o, struct kcov_thread *td)
{
	char state;

	o->pid = getpid();
	o->tid = sys_gettid();
	o->td = td;
	o->start = 0;
	(void)read_thread_stat(o->pid, o->tid, &o->start, &state);
}

int
kcov_plat_owner_gone(const struct kcov_owner *o)
{
	uint64_t start = 0;
	char state = 0;

	/* In the owner's own process its exit hooks never miss. */
	if (o->pid == getpid())
		return 0;
	if (read_thread_stat(o->pid, o->tid, &start, &state) != 0)
		return 1;
	if (state == 'Z' || state == 'X' || state == 'x')
		return 1;
	return o->start != 0 && start != o->start;
}

int
kcov_plat_owner_is_current(const struct kcov_owner *o,
    const struct kcov_thread *td)
{
	return o->td == td && o->pid == getpid();
}

int
kcov_plat_copyin(void *dst, uintptr_t uaddr, size_t len)
{
	struct iovec local = { dst, len };
	struct iovec remote = { (void *)uaddr, len };
	ssize_t n;

	if (uaddr == 0)
		return EFAULT;
	/* Reading our own memory this way turns a bad pointer into EFAULT. */
	n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
		memcpy(dst, (const void *)uaddr, len);
		return 0;
	}
	return EFAULT;
}

void
kcov_plat_thread_bound(struct kcov_thread *td)
{
	pthread_once(&exit_once, exit_key_create);
	pthread_setspecific(exit_key, td);
}

void
kcov_plat_lock(struct kcov_desc *d)
{
	int spins = 0;

	while (__atomic_exchange_n(&d->lock, 1, __ATOMIC_ACQUIRE)) {
		if (++spins > 64)
			sched_yield();
	}
}

void
kcov_plat_unlock(struct kcov_desc *d)
{
	__atomic_store_n(&d->lock, 0, __ATOMIC_RELEASE);
}

/* --- Public API (kcovrt.h) ----------------------------------------------- */

KCOVRT_API const char *
kcovrt_version(void)
{
	return "0.1.0";
}

KCOVRT_API int
kcovrt_path_personality(const char *path)
{
	const char *s;

	if (path == NULL)
		return -1;
	if (strcmp(path, "/sys/kernel/debug/kcov") == 0)
		return KCOVRT_ABI_LINUX;
	if (strcmp(path, "/dev/kcov") != 0)
		return -1;
	s = getenv("KCOV_BSD_ABI");
	if (s != NULL && strcmp(s, "netbsd") == 0)
		return KCOVRT_ABI_NETBSD;
	if (s != NULL && strcmp(s, "openbsd") == 0)
		return KCOVRT_ABI_OPENBSD;
	return KCOVRT_ABI_FREEBSD;
}

KCOVRT_API int
kcovrt_open(int flags, int personality)
{
	struct kcov_hosted_hdr *hdr;
	int fd, saved;

	if (personality < KCOVRT_ABI_FREEBSD ||
	    personality > KCOVRT_ABI_OPENBSD) {
		errno = EINVAL;
		return -1;
	}
	if (page_size == 0)
		kcov_hosted_init();
	fd = memfd_create("kcov", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
	if (fd < 0)
		return -1;
	if (syscall(SYS_ftruncate, fd, (off_t)page_size) != 0)
		goto fail;
	hdr = map_region(fd, 0, (size_t)page_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED, NULL);
	if (hdr == MAP_FAILED)
		goto fail;
	kcov_desc_init(&hdr->desc);
	hdr->personality = (uint32_t)personality;
	if (flock(fd, LOCK_SH) != 0 || known_add(fd, hdr) != 0) {
		munmap(hdr, (size_t)page_size);
		errno = ENFILE;
		goto fail;
	}
	return fd;
fail:
	saved = errno;
	sys_close(fd);
	errno = saved;
	return -1;
}

KCOVRT_API int
kcovrt_is_kcov(int fd)
{
	return known_find(fd) != NULL;
}

KCOVRT_API int
kcovrt_is_kcov_cmd(unsigned long cmd)
{
	switch (cmd) {
	case KCOV_FREEBSD_KIOSETBUFSIZE:
	case KCOV_FREEBSD_KIOENABLE:
	case KCOV_FREEBSD_KIODISABLE:
	case KCOV_LINUX_INIT_TRACE:
	case KCOV_LINUX_INIT_TRACE32:
	case KCOV_LINUX_ENABLE:
	case KCOV_LINUX_DISABLE:
	case KCOV_LINUX_REMOTE_ENABLE:
	case KCOV_NETBSD_IOC_SETBUFSIZE:
	case KCOV_NETBSD_IOC_ENABLE:
	case KCOV_NETBSD_IOC_DISABLE:
	case KCOV_NETBSD_IOC_REMOTE_ATTACH:
	case KCOV_NETBSD_IOC_REMOTE_DETACH:
	case KCOV_OPENBSD_KIOREMOTEATTACH:
		return 1;
	}
	return 0;
}

KCOVRT_API int
kcovrt_ioctl(int fd, unsigned long cmd, uintptr_t arg)
{
	struct kcov_hosted_hdr *hdr = known_find(fd);
	int error;

	if (hdr == NULL) {
		errno = fcntl(fd, F_GETFD) < 0 ? EBADF : ENOTTY;
		return -1;
	}
	error = kcov_ioctl(&hdr->desc, &kcov_td, cmd, arg,
	    (int)hdr->personality, &fd);
	if (error != 0) {
		errno = error;
		return -1;
	}
	return 0;
}

KCOVRT_API void *
kcovrt_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	struct kcov_hosted_hdr *hdr = known_find(fd);
	uint64_t boff;
	int error;

	if (hdr == NULL) {
		errno = EBADF;
		return MAP_FAILED;
	}
	error = kcov_mmap_check(&hdr->desc, (int)hdr->personality, len,
	    (prot & PROT_READ) != 0, (prot & PROT_WRITE) != 0,
	    (prot & PROT_EXEC) != 0,
	    (flags & MAP_TYPE) == MAP_SHARED ||
	        (flags & MAP_TYPE) == MAP_SHARED_VALIDATE,
	    (int64_t)off, (uint64_t)page_size, &boff);
	if (error != 0) {
		errno = error;
		return MAP_FAILED;
	}
	return map_region(fd, (off_t)(page_size + boff), len, prot, flags,
	    addr);
}

KCOVRT_API int
kcovrt_close(int fd)
{
	struct kcov_hosted_hdr *hdr = known_find(fd);
	int probe, last = 1;

	if (hdr == NULL)
		return sys_close(fd);
	probe = reopen_fd(fd);
	if (sys_close(fd) != 0)
		return -1;
	if (probe >= 0) {
		/* Our open file is gone everywhere iff nobody holds its lock. */
		last = flock(probe, LOCK_EX | LOCK_NB) == 0;
		sys_close(probe);
	}
	if (!last)
		return 0;
	known_remove(hdr);
	if (kcov_close(&hdr->desc))
		hosted_free(&hdr->desc);
	return 0;
}

KCOVRT_API int
kcovrt_info(int fd, struct kcovrt_info *out)
{
	struct kcov_hosted_hdr *hdr = known_find(fd);
	struct kcov_desc_info di;

	if (hdr == NULL) {
		errno = EBADF;
		return -1;
	}
	kcov_desc_info(&hdr->desc, &di);
	memset(out, 0, sizeof(*out));
	out->state = di.state;
	out->abi = di.abi;
	out->personality = hdr->personality;
	out->mode = di.mode;
	out->running = di.active != KCOV_ACTIVE_OFF;
	out->orphaned = (di.flags & KCOV_FLAG_ORPHANED) != 0;
	out->entries = di.entries;
	out->bufsize = di.bufsize;
	out->count = di.count;
	out->capacity = di.capacity;
	out->dropped = di.dropped;
	out->owner_tid = di.owner_tid;
	return 0;
}

KCOVRT_API int
kcovrt_reset(int fd)
{
	struct kcov_hosted_hdr *hdr = known_find(fd);

	if (hdr == NULL) {
		errno = EBADF;
		return -1;
	}
	kcov_reset(&hdr->desc);
	return 0;
}
