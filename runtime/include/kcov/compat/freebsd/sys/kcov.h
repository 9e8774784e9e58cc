/*
 * <sys/kcov.h> for FreeBSD kcov clients built on Linux against the hosted
 * kcov device (kcov-run).  Names and values are those of FreeBSD's
 * sys/sys/kcov.h and sys/sys/coverage.h (spec bsd-kcov.md §1.1), so
 * tests/sys/kern/kcov.c-style code compiles unchanged with
 *
 *	-I$(python -c 'import kcov; print(kcov.get_include())')/kcov/compat/freebsd
 *
 * FreeBSD spells the ioctl numbers with _IOWINT() and _IO() from
 * <sys/ioccom.h>.  Linux's <sys/ioctl.h> defines an _IO() with a different
 * encoding, and clients include it, so the BSD encoding is spelled here with
 * private macros that cannot clash; the _Static_asserts pin the results.
 */
#ifndef _SYS_KCOV_H_
#define _SYS_KCOV_H_

/* sys/ioccom.h, shared by FreeBSD, NetBSD and OpenBSD. */
#define __KCOV_BSD_IOCPARM_MASK 0x1fff
#define __KCOV_BSD_IOC_VOID     0x20000000UL
#define __KCOV_BSD_IOC(inout, group, num, len)                         \
	((unsigned long)((inout) |                                     \
	    (((unsigned long)(len) & __KCOV_BSD_IOCPARM_MASK) << 16) | \
	    ((unsigned long)(group) << 8) | (unsigned long)(num)))
#define __KCOV_BSD_IO(g, n) __KCOV_BSD_IOC(__KCOV_BSD_IOC_VOID, (g), (n), 0)
/* FreeBSD's _IOWINT: an int argument passed by value, not copied in. */
#define __KCOV_BSD_IOWINT(g, n) \
	__KCOV_BSD_IOC(__KCOV_BSD_IOC_VOID, (g), (n), sizeof(int))

#define KCOV_MAXENTRIES (1 << 24) /* 16M */
#define KCOV_ENTRY_SIZE 8

/* Trace modes for KIOENABLE; FreeBSD has no "none" mode. */
#define KCOV_MODE_TRACE_PC  0
#define KCOV_MODE_TRACE_CMP 1

/* KCOV ioctls; both int arguments travel by value. */
#define KIOENABLE     __KCOV_BSD_IOWINT('c', 2) /* Enable recording */
#define KIODISABLE    __KCOV_BSD_IO('c', 3)     /* Disable recording */
#define KIOSETBUFSIZE __KCOV_BSD_IOWINT('c', 4) /* Set the buffer size */

#include <sys/coverage.h>

/* The comparison type word of a TRACE_CMP record. */
#define KCOV_CMP_CONST       COV_CMP_CONST
#define KCOV_CMP_SIZE(x)     COV_CMP_SIZE(x)
#define KCOV_CMP_MASK        COV_CMP_MASK
#define KCOV_CMP_GET_SIZE(x) COV_CMP_GET_SIZE(x)

/* The headers serve C and C++ (syzkaller's executor) clients. */
#ifndef __KCOV_STATIC_ASSERT
#ifdef __cplusplus
#define __KCOV_STATIC_ASSERT(e, m) static_assert(e, m)
#else
#define __KCOV_STATIC_ASSERT(e, m) _Static_assert(e, m)
#endif
#endif
__KCOV_STATIC_ASSERT(KCOV_MAXENTRIES == 16777216, "KCOV_MAXENTRIES");
__KCOV_STATIC_ASSERT(KCOV_ENTRY_SIZE == 8, "KCOV_ENTRY_SIZE");
__KCOV_STATIC_ASSERT(KIOENABLE == 0x20046302UL, "KIOENABLE");
__KCOV_STATIC_ASSERT(KIODISABLE == 0x20006303UL, "KIODISABLE");
__KCOV_STATIC_ASSERT(KIOSETBUFSIZE == 0x20046304UL, "KIOSETBUFSIZE");
__KCOV_STATIC_ASSERT(KCOV_CMP_CONST == 1, "KCOV_CMP_CONST");
__KCOV_STATIC_ASSERT(KCOV_CMP_SIZE(3) == 6 && KCOV_CMP_MASK == 6,
    "KCOV_CMP_SIZE");
__KCOV_STATIC_ASSERT(KCOV_CMP_GET_SIZE(KCOV_CMP_SIZE(2) | KCOV_CMP_CONST) == 2,
    "KCOV_CMP_GET_SIZE");

#endif /* !_SYS_KCOV_H_ */
