/*
 * kcovrt.h - public C API of the hosted kcov runtime.
 *
 * The runtime implements the kcov device contract inside a user-space
 * process.  A descriptor is a real file descriptor (a memfd), so dup(),
 * dup2(), fork() and close() behave as they do on a kernel's /dev/kcov.
 * kcov-run interposes open/ioctl/mmap/close so that unmodified kcov clients
 * use these functions without knowing it; code that knows it is hosted (the
 * Python package, tests) calls them directly.
 *
 * Buffer layouts (all words are uint64_t, native endian):
 *   PC mode:  [count][pc 1]...[pc count]              capacity entries - 1
 *   CMP mode: [count]{type, arg1, arg2, pc} x count   capacity (entries-1)/4
 *   type = KCOV_CMP_SIZE(log2 bytes) | KCOV_CMP_CONST if arg1 is a constant
 * PCs are return addresses of the callback inside the instrumented function.
 * Word 0 is written by user space to reset; it never exceeds the capacity.
 *
 * Every function returns -1 (MAP_FAILED for kcovrt_mmap) and sets errno on
 * failure, with the errno of the ABI in use.
 *
 * The lifetime of a descriptor (KCOVRT_STATE_*), after FreeBSD's
 * kern_kcov.c, whatever the ABI:
 *
 *            KIOSETBUFSIZE          KIOENABLE
 *   OPEN ------------------> READY ----------> RUNNING
 *    |                        ^  ^               |  |
 *    |                        |  +---------------+  |
 *    |                        |  KIODISABLE or      |
 *    |                        |  owner thread exit  |
 *    | last close             | last close          | last close
 *    v                        v                     v
 *  (freed) <-------------- DYING <------------------+
 *                 freed at once, or at the owner thread's exit
 *
 * The sizing command is KIOSETBUFSIZE (FreeBSD, OpenBSD),
 * KCOV_IOC_SETBUFSIZE (NetBSD) or KCOV_INIT_TRACE (Linux); enabling is
 * KIOENABLE, KCOV_IOC_ENABLE or KCOV_ENABLE; disabling KIODISABLE,
 * KCOV_IOC_DISABLE or KCOV_DISABLE.  Which command is refused in which state,
 * and with which errno, is each ABI's own.
 *
 * OPEN:    the file is open and has no buffer.
 * READY:   the buffer exists and may be mapped and enabled by any thread.
 * RUNNING: exactly one thread (the owner) records into the buffer.  The
 *          buffer is never cleared by the runtime; user space resets word 0.
 * DYING:   the file was closed.  If a thread still owns the descriptor the
 *          free waits for that thread to exit; until then the thread may not
 *          enable another descriptor.  FreeBSD and OpenBSD stop recording at
 *          the close; Linux and NetBSD keep recording until the owner exits
 *          (kcovrt_info's `orphaned`).
 *
 * Memory ordering.  Entering RUNNING publishes the mode and the owner before
 * recording is switched on.  Leaving it (disable, the owner's exit and, on
 * FreeBSD and OpenBSD, a close from any thread) switches recording off
 * first, so the owner's next callback records nothing.  Each record is stored before word 0 is
 * advanced, with release semantics: a reader that loads word 0 with acquire
 * semantics may read that many complete records.  The descriptor lock is
 * never taken on the recording path (runtime/engine.h).
 */
#ifndef KCOVRT_H
#define KCOVRT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kcov/noinstr.h" /* KCOV_NO_COVERAGE, for users' code */

#ifdef __cplusplus
extern "C" {
#endif

#define KCOVRT_VERSION_MAJOR 0
#define KCOVRT_VERSION_MINOR 1
#define KCOVRT_VERSION_PATCH 0

/* ABIs (also the device personalities). */
#define KCOVRT_ABI_NONE    0
#define KCOVRT_ABI_FREEBSD 1
#define KCOVRT_ABI_LINUX   2
#define KCOVRT_ABI_NETBSD  3
#define KCOVRT_ABI_OPENBSD 4

/* Descriptor states, FreeBSD's names (kern_kcov.c). */
#define KCOVRT_STATE_OPEN    1
#define KCOVRT_STATE_READY   2
#define KCOVRT_STATE_RUNNING 3
#define KCOVRT_STATE_DYING   4

/* Trace modes as the runtime reports them (not an ABI's numbers). */
#define KCOVRT_MODE_NONE 0
#define KCOVRT_MODE_PC   1
#define KCOVRT_MODE_CMP  2

struct kcovrt_info {
	uint32_t state;       /* KCOVRT_STATE_* */
	uint32_t abi;         /* the ABI that sized it, or KCOVRT_ABI_NONE */
	uint32_t personality; /* the ABI the device was opened as */
	uint32_t mode;        /* KCOVRT_MODE_* of the last enable */
	uint32_t running;     /* 1 while a thread records into it */
	uint32_t orphaned;    /* closed while running, still recording */
	uint64_t entries;     /* size in 8-byte entries, 0 before sizing */
	uint64_t bufsize;     /* bytes, page-rounded */
	uint64_t count;       /* word 0, as stored */
	uint64_t capacity;    /* records that fit in the current mode */
	uint64_t dropped;     /* records dropped since the last reset */
	int64_t owner_tid;    /* kernel tid of the owner, 0 if none */
};

/*
 * Open a new descriptor, as open("/dev/kcov") would.  `flags` honours
 * O_CLOEXEC; `personality` picks the ABI for the NetBSD/OpenBSD command
 * numbers (which collide) and for unknown-command errors.
 */
int kcovrt_open(int flags, int personality);

/* The personality a path opens, or -1 if it is not a kcov device path. */
int kcovrt_path_personality(const char *path);

/* 1 if `fd` is a hosted kcov descriptor. */
int kcovrt_is_kcov(int fd);

/* 1 if `cmd` is an ioctl number of any supported ABI. */
int kcovrt_is_kcov_cmd(unsigned long cmd);

/* ioctl on a descriptor; `arg` is the value or pointer the ABI expects. */
int kcovrt_ioctl(int fd, unsigned long cmd, uintptr_t arg);

/* mmap of a descriptor, checked against the ABI's rules. */
void *kcovrt_mmap(void *addr, size_t len, int prot, int flags, int fd,
    off_t off);

/* close() with kcov semantics on the last close of the open file. */
int kcovrt_close(int fd);

/* State of a descriptor. */
int kcovrt_info(int fd, struct kcovrt_info *out);

/* Set word 0 to 0 and clear the private overflow counter. */
int kcovrt_reset(int fd);

/* The runtime's version string, "MAJOR.MINOR.PATCH". */
const char *kcovrt_version(void);

#ifdef __cplusplus
}
#endif

#endif /* KCOVRT_H */
