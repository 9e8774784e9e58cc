/*
 * kcov_abi.h - ioctl numbers and constants of the four kcov ABIs, as the
 * engine sees them.  Values are computed from each OS's ioccom.h / ioctl.h
 * macros (see ../shared/spec) and checked against the public compat headers
 * in include/kcov/compat by tests/runtime.
 *
 * The FreeBSD and Linux sets live in group 'c' but never collide.  NetBSD and
 * OpenBSD use the same three numbers in group 'K' with different errno rules,
 * so a device that answers both needs a personality to choose between them.
 */
#ifndef KCOV_ABI_H
#define KCOV_ABI_H

/* FreeBSD sys/kcov.h: _IOWINT / _IO in group 'c'; int arguments by value. */
#define KCOV_FREEBSD_KIOENABLE      0x20046302UL
#define KCOV_FREEBSD_KIODISABLE     0x20006303UL
#define KCOV_FREEBSD_KIOSETBUFSIZE  0x20046304UL
#define KCOV_FREEBSD_MODE_TRACE_PC  0
#define KCOV_FREEBSD_MODE_TRACE_CMP 1
#define KCOV_FREEBSD_MAXENTRIES     (1UL << 24)

/* Linux include/uapi/linux/kcov.h on LP64; arguments by value except REMOTE. */
#define KCOV_LINUX_INIT_TRACE    0x80086301UL
#define KCOV_LINUX_INIT_TRACE32  0x80046301UL
#define KCOV_LINUX_ENABLE        0x6364UL
#define KCOV_LINUX_DISABLE       0x6365UL
#define KCOV_LINUX_REMOTE_ENABLE 0x40186366UL
#define KCOV_LINUX_TRACE_PC      0
#define KCOV_LINUX_TRACE_CMP     1
#define KCOV_LINUX_ENOTSUPP      524 /* kernel-internal ENOTSUPP, leaks to users */

/* NetBSD sys/kcov.h v1.10: pointer arguments. */
#define KCOV_NETBSD_IOC_SETBUFSIZE    0x80084b01UL
#define KCOV_NETBSD_IOC_ENABLE        0x80044b02UL
#define KCOV_NETBSD_IOC_DISABLE       0x20004b03UL
#define KCOV_NETBSD_IOC_REMOTE_ATTACH 0x80104b0aUL
#define KCOV_NETBSD_IOC_REMOTE_DETACH 0x20004b0bUL
#define KCOV_NETBSD_MAX_ENTRIES       (256UL << 10)

/* OpenBSD sys/kcov.h v1.9 on LP64: the same numbers as NetBSD, plus REMOTE. */
#define KCOV_OPENBSD_KIOSETBUFSIZE   0x80084b01UL
#define KCOV_OPENBSD_KIOENABLE       0x80044b02UL
#define KCOV_OPENBSD_KIODISABLE      0x20004b03UL
#define KCOV_OPENBSD_KIOREMOTEATTACH 0x80084b04UL
#define KCOV_OPENBSD_BUF_MAX_NMEMB   (512UL << 10)

/* NetBSD and OpenBSD mode numbers. */
#define KCOV_BSD_MODE_NONE      0
#define KCOV_BSD_MODE_TRACE_PC  1
#define KCOV_BSD_MODE_TRACE_CMP 2

/* The comparison type word, common to all four. */
#define KCOV_CMP_CONST_BIT    1ULL
#define KCOV_CMP_SIZE_BITS(n) ((unsigned long long)(n) << 1)

#endif /* KCOV_ABI_H */
