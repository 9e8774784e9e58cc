/*
 * <sys/kcov.h> for OpenBSD kcov clients built on Linux against the hosted
 * kcov device (kcov-run --abi openbsd).  Names and values are those of
 * OpenBSD's sys/sys/kcov.h v1.9 (spec bsd-kcov.md §3.1); the kernel-only
 * declarations (kcov_exit(), kcov_remote_register() and friends) are left
 * out.
 *
 * OpenBSD spells the ioctl numbers with _IOW() and _IO() from
 * <sys/ioccom.h>.  Linux's <sys/ioctl.h> has macros of the same names with
 * another encoding, so the BSD encoding is spelled with private macros.
 * KIOREMOTEATTACH takes the size of a *pointer* (as OpenBSD's header does),
 * so it is 0x80084b04 on LP64 and 0x80044b04 on ILP32.
 */
#ifndef _SYS_KCOV_H_
#define _SYS_KCOV_H_

#define __KCOV_BSD_IOCPARM_MASK 0x1fff
#define __KCOV_BSD_IOC_VOID     0x20000000UL
#define __KCOV_BSD_IOC_IN       0x80000000UL
#define __KCOV_BSD_IOC(inout, group, num, len)                         \
	((unsigned long)((inout) |                                     \
	    (((unsigned long)(len) & __KCOV_BSD_IOCPARM_MASK) << 16) | \
	    ((unsigned long)(group) << 8) | (unsigned long)(num)))
#define __KCOV_BSD_IO(g, n) __KCOV_BSD_IOC(__KCOV_BSD_IOC_VOID, (g), (n), 0)
#define __KCOV_BSD_IOW(g, n, t) \
	__KCOV_BSD_IOC(__KCOV_BSD_IOC_IN, (g), (n), sizeof(t))

#define KIOSETBUFSIZE   __KCOV_BSD_IOW('K', 1, unsigned long)
#define KIOENABLE       __KCOV_BSD_IOW('K', 2, int)
#define KIODISABLE      __KCOV_BSD_IO('K', 3)
#define KIOREMOTEATTACH __KCOV_BSD_IOW('K', 4, struct kio_remote_attach *)

#define KCOV_MODE_NONE      0
#define KCOV_MODE_TRACE_PC  1
#define KCOV_MODE_TRACE_CMP 2

#define KCOV_REMOTE_COMMON 0

struct kio_remote_attach {
	int subsystem;
	int id;
};

/* The headers serve C and C++ (syzkaller's executor) clients. */
#ifndef __KCOV_STATIC_ASSERT
#ifdef __cplusplus
#define __KCOV_STATIC_ASSERT(e, m) static_assert(e, m)
#else
#define __KCOV_STATIC_ASSERT(e, m) _Static_assert(e, m)
#endif
#endif
__KCOV_STATIC_ASSERT(KIOSETBUFSIZE ==
        (sizeof(long) == 8 ? 0x80084b01UL : 0x80044b01UL),
    "KIOSETBUFSIZE");
__KCOV_STATIC_ASSERT(KIOENABLE == 0x80044b02UL, "KIOENABLE");
__KCOV_STATIC_ASSERT(KIODISABLE == 0x20004b03UL, "KIODISABLE");
__KCOV_STATIC_ASSERT(KIOREMOTEATTACH ==
        (sizeof(void *) == 8 ? 0x80084b04UL : 0x80044b04UL),
    "KIOREMOTEATTACH");
__KCOV_STATIC_ASSERT(sizeof(struct kio_remote_attach) == 8,
    "struct kio_remote_attach");

#endif /* !_SYS_KCOV_H_ */
