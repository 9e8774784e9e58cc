/*
 * kcov_shim.h - forced in front of the tests/runtime C clients (-include)
 * for the sanitizer builds.
 *
 * Under kcov-run the clients reach the hosted device through
 * libkcov-preload.so, but a sanitizer runtime must come first in the link
 * map and intercepts the same libc functions, so the sanitizer builds link
 * the runtime into the executable and route the clients' calls here at
 * compile time instead.  The system headers are included first, so their
 * declarations are not renamed; only the clients' calls are.
 */
#ifndef KCOV_SHIM_H
#define KCOV_SHIM_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <kcovrt.h>

static inline int
kshim_open(const char *path, int flags, ...)
{
	int personality = kcovrt_path_personality(path);

	if (personality >= 0)
		return kcovrt_open(flags, personality);
	return openat(AT_FDCWD, path, flags, 0);
}

/* Like glibc's ioctl: the third argument is one register-sized word. */
static inline int
kshim_ioctl(int fd, unsigned long cmd, ...)
{
	va_list ap;
	uintptr_t arg;

	va_start(ap, cmd);
	arg = va_arg(ap, uintptr_t);
	va_end(ap);
	if (kcovrt_is_kcov(fd))
		return kcovrt_ioctl(fd, cmd, arg);
	return ioctl(fd, cmd, arg);
}

static inline void *
kshim_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (fd >= 0 && kcovrt_is_kcov(fd))
		return kcovrt_mmap(addr, len, prot, flags, fd, off);
	return mmap(addr, len, prot, flags, fd, off);
}

#define open  kshim_open
#define ioctl kshim_ioctl
#define mmap  kshim_mmap
#define close kcovrt_close

#endif /* KCOV_SHIM_H */
