/*
 * <linux/kcov.h> for Linux kcov clients run on the hosted kcov device
 * (kcov-run serves /sys/kernel/debug/kcov).  Names, values and layout are
 * those of the Linux UAPI header include/uapi/linux/kcov.h (spec
 * linux-kcov.md §1); tests/runtime checks them against the system's own
 * <linux/kcov.h>.  The include guard is the UAPI one, so a client that
 * reaches both headers gets one set of definitions.
 *
 * The Linux ioctl encoding is the native one here, so <linux/ioctl.h>'s
 * _IOR/_IOW/_IO give the kernel's numbers directly.
 */
#ifndef _LINUX_KCOV_IOCTLS_H
#define _LINUX_KCOV_IOCTLS_H

#include <linux/ioctl.h>
#include <linux/types.h>

/*
 * Argument of KCOV_REMOTE_ENABLE.  The layout is the same for 32- and
 * 64-bit user space (24 bytes, handles at offset 24).  The hosted device
 * checks the argument as Linux does, then refuses with ENOTSUPP (524):
 * a process has no kernel threads or softirqs to collect from.
 */
struct kcov_remote_arg {
	__u32 trace_mode;  /* KCOV_TRACE_PC or KCOV_TRACE_CMP */
	__u32 area_size;   /* Length of coverage buffer in words */
	__u32 num_handles; /* Size of handles array */
	__aligned_u64 common_handle;
	__aligned_u64 handles[];
};

#define KCOV_REMOTE_MAX_HANDLES 0x100

/* INIT_TRACE, ENABLE and DISABLE take their argument by value. */
#define KCOV_INIT_TRACE    _IOR('c', 1, unsigned long)
#define KCOV_ENABLE        _IO('c', 100)
#define KCOV_DISABLE       _IO('c', 101)
#define KCOV_REMOTE_ENABLE _IOW('c', 102, struct kcov_remote_arg)

enum {
	/* PC is 0 because KCOV_ENABLE's argument once had to be 0. */
	KCOV_TRACE_PC = 0,
	KCOV_TRACE_CMP = 1,
};

/*
 * The type word of a comparison record: bit 0 set if one operand is a
 * compile-time constant, bits 1-2 log2 of the operand size in bytes.
 */
#define KCOV_CMP_CONST   (1 << 0)
#define KCOV_CMP_SIZE(n) ((n) << 1)
#define KCOV_CMP_MASK    KCOV_CMP_SIZE(3)

#define KCOV_SUBSYSTEM_COMMON (0x00ull << 56)
#define KCOV_SUBSYSTEM_USB    (0x01ull << 56)

#define KCOV_SUBSYSTEM_MASK (0xffull << 56)
#define KCOV_INSTANCE_MASK  (0xffffffffull)

static __inline__ __u64
kcov_remote_handle(__u64 subsys, __u64 inst)
{
	if (subsys & ~KCOV_SUBSYSTEM_MASK || inst & ~KCOV_INSTANCE_MASK)
		return 0;
	return subsys | inst;
}

/* The headers serve C and C++ (syzkaller's executor) clients. */
#ifndef __KCOV_STATIC_ASSERT
#ifdef __cplusplus
#define __KCOV_STATIC_ASSERT(e, m) static_assert(e, m)
#else
#define __KCOV_STATIC_ASSERT(e, m) _Static_assert(e, m)
#endif
#endif

#if defined(__x86_64__) || defined(__aarch64__)
__KCOV_STATIC_ASSERT(KCOV_INIT_TRACE == 0x80086301UL, "KCOV_INIT_TRACE");
#endif
__KCOV_STATIC_ASSERT(KCOV_ENABLE == 0x6364, "KCOV_ENABLE");
__KCOV_STATIC_ASSERT(KCOV_DISABLE == 0x6365, "KCOV_DISABLE");
__KCOV_STATIC_ASSERT(KCOV_REMOTE_ENABLE == 0x40186366UL, "KCOV_REMOTE_ENABLE");
__KCOV_STATIC_ASSERT(sizeof(struct kcov_remote_arg) == 24, "kcov_remote_arg");

#endif /* _LINUX_KCOV_IOCTLS_H */
