/*
 * <sys/kcov.h> for NetBSD kcov clients built on Linux against the hosted
 * kcov device (kcov-run --abi netbsd).  Names and values are those of
 * NetBSD's sys/sys/kcov.h v1.10 (spec bsd-kcov.md §2.1); the kernel-only
 * declarations (kcov_remote_register() and friends) are left out.
 *
 * NetBSD spells the ioctl numbers with _IOW() and _IO() from <sys/ioccom.h>.
 * Linux's <sys/ioctl.h> has macros of the same names with another encoding,
 * so the BSD encoding is spelled with private macros; the _Static_asserts
 * pin the results (amd64/arm64 values).
 */
#ifndef _SYS_KCOV_H_
#define _SYS_KCOV_H_

#include <stdint.h>

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

#define KCOV_MODE_NONE      0
#define KCOV_MODE_TRACE_PC  1
#define KCOV_MODE_TRACE_CMP 2

struct kcov_ioc_remote_attach {
	uint64_t subsystem;
	uint64_t id;
};

/* Remote subsystems; no remote source exists in a hosted process. */
#define KCOV_REMOTE_VHCI 0
#define KCOV_REMOTE_VHCI_ID(bus, port) \
	(((uint64_t)(bus) << 32ULL) | ((uint64_t)(port) & 0xffffffffULL))

/* Every argument is a pointer: the kernel copies it in. */
#define KCOV_IOC_SETBUFSIZE __KCOV_BSD_IOW('K', 1, uint64_t)
#define KCOV_IOC_ENABLE     __KCOV_BSD_IOW('K', 2, int)
#define KCOV_IOC_DISABLE    __KCOV_BSD_IO('K', 3)
#define KCOV_IOC_REMOTE_ATTACH \
	__KCOV_BSD_IOW('K', 10, struct kcov_ioc_remote_attach)
#define KCOV_IOC_REMOTE_DETACH __KCOV_BSD_IO('K', 11)

typedef volatile uint64_t kcov_int_t;
#define KCOV_ENTRY_SIZE sizeof(kcov_int_t)

/*
 * Accessors for word 0 from an older revision of the header, which
 * tests/modules/t_kcov.c still uses (bsd-kcov.md §2.4).
 */
#ifndef KCOV_STORE
#define KCOV_STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define KCOV_LOAD(x)     __atomic_load_n(&(x), __ATOMIC_RELAXED)
#endif

/* The headers serve C and C++ (syzkaller's executor) clients. */
#ifndef __KCOV_STATIC_ASSERT
#ifdef __cplusplus
#define __KCOV_STATIC_ASSERT(e, m) static_assert(e, m)
#else
#define __KCOV_STATIC_ASSERT(e, m) _Static_assert(e, m)
#endif
#endif
__KCOV_STATIC_ASSERT(KCOV_IOC_SETBUFSIZE == 0x80084b01UL,
    "KCOV_IOC_SETBUFSIZE");
__KCOV_STATIC_ASSERT(KCOV_IOC_ENABLE == 0x80044b02UL, "KCOV_IOC_ENABLE");
__KCOV_STATIC_ASSERT(KCOV_IOC_DISABLE == 0x20004b03UL, "KCOV_IOC_DISABLE");
__KCOV_STATIC_ASSERT(KCOV_IOC_REMOTE_ATTACH == 0x80104b0aUL,
    "KCOV_IOC_REMOTE_ATTACH");
__KCOV_STATIC_ASSERT(KCOV_IOC_REMOTE_DETACH == 0x20004b0bUL,
    "KCOV_IOC_REMOTE_DETACH");
__KCOV_STATIC_ASSERT(sizeof(struct kcov_ioc_remote_attach) == 16,
    "struct kcov_ioc_remote_attach");
__KCOV_STATIC_ASSERT(KCOV_ENTRY_SIZE == 8, "KCOV_ENTRY_SIZE");

#endif /* !_SYS_KCOV_H_ */
