/*
 * preload.c - libkcov-preload.so, loaded by kcov-run through LD_PRELOAD.
 *
 * It interposes the libc entry points a kcov client uses, so that an
 * unmodified program sees /dev/kcov (BSD personalities) and
 * /sys/kernel/debug/kcov (Linux) as it would on a kernel with kcov.  Calls
 * that are not about kcov go straight to the kernel.  dup, dup2, fork and
 * munmap need nothing: a hosted descriptor is a real file descriptor.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kcovrt.h"

#define EXPORT __attribute__((visibility("default")))

static int
open_common(int dirfd, const char *path, int flags, mode_t mode)
{
	int personality = kcovrt_path_personality(path);

	if (personality >= 0)
		return kcovrt_open(flags, personality);
	return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

#define OPEN_MODE(flags, mode)                           \
	do {                                             \
		if ((flags) & (O_CREAT | __O_TMPFILE)) { \
			va_list ap;                      \
			va_start(ap, flags);             \
			mode = va_arg(ap, mode_t);       \
			va_end(ap);                      \
		}                                        \
	} while (0)

EXPORT int
open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	OPEN_MODE(flags, mode);
	return open_common(AT_FDCWD, path, flags, mode);
}

EXPORT int
open64(const char *path, int flags, ...)
{
	mode_t mode = 0;

	OPEN_MODE(flags, mode);
	return open_common(AT_FDCWD, path, flags, mode);
}

EXPORT int
openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	OPEN_MODE(flags, mode);
	return open_common(dirfd, path, flags, mode);
}

EXPORT int
openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	OPEN_MODE(flags, mode);
	return open_common(dirfd, path, flags, mode);
}

/* The _FORTIFY_SOURCE variants. */
EXPORT int
__open_2(const char *path, int flags)
{
	return open_common(AT_FDCWD, path, flags, 0);
}

EXPORT int
__open64_2(const char *path, int flags)
{
	return open_common(AT_FDCWD, path, flags, 0);
}

EXPORT int
__openat_2(int dirfd, const char *path, int flags)
{
	return open_common(dirfd, path, flags, 0);
}

EXPORT int
__openat64_2(int dirfd, const char *path, int flags)
{
	return open_common(dirfd, path, flags, 0);
}

/* ioctls every kernel handles above the driver (fcntl-like flags). */
static int
generic_file_ioctl(unsigned long cmd)
{
	switch (cmd) {
	case FIOCLEX:
	case FIONCLEX:
	case FIONBIO:
	case FIOASYNC:
	case FIONREAD:
		return 1;
	}
	return 0;
}

EXPORT int
ioctl(int fd, unsigned long cmd, ...)
{
	uintptr_t arg;
	va_list ap;

	va_start(ap, cmd);
	arg = va_arg(ap, uintptr_t);
	va_end(ap);
	/*
	 * Every command on a kcov descriptor is the driver's, so unknown ones
	 * get the ABI's errno (EINVAL on FreeBSD and NetBSD, ENOTTY on Linux
	 * and OpenBSD), not the memfd's ENOTTY.  The generic file ioctls are
	 * the kernel's own on every system and stay with it.
	 */
	if (!generic_file_ioctl(cmd) && kcovrt_is_kcov(fd))
		return kcovrt_ioctl(fd, cmd, arg);
	return (int)syscall(SYS_ioctl, fd, cmd, arg);
}

EXPORT void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!(flags & MAP_ANONYMOUS) && kcovrt_is_kcov(fd))
		return kcovrt_mmap(addr, len, prot, flags, fd, off);
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

EXPORT void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

EXPORT int
close(int fd)
{
	return kcovrt_close(fd);
}
