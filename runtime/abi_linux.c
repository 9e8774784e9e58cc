/*
 * abi_linux.c - the Linux front-end: the ioctls and mmap rules of
 * kernel/kcov.c (linux-kcov.md §2.3), over the engine's transitions (abi.h).
 */
#include "abi.h"
#include "platform.h"

/* kernel/kcov.c's kcov_ioctl_locked. */
KCOV_NOINSTR int
kcov_linux_locked(struct kcov_desc *d, struct kcov_thread *td,
    unsigned long cmd, uintptr_t arg, void *pctx)
{
	uint32_t hdr[3];

	switch (cmd) {
	case KCOV_LINUX_INIT_TRACE:
		/*
		 * Linux allocates before it looks at the state, so ENOMEM can
		 * win over EBUSY there; here EBUSY is checked first, which
		 * differs only when both apply.
		 */
		if (arg < 2 || arg > 0x7fffffffUL / 8)
			return K_EINVAL;
		if (d->state != KCOV_STATE_OPEN)
			return K_EBUSY;
		return kcov_alloc_locked(d, arg, KCOV_ABI_LINUX, pctx);
	case KCOV_LINUX_ENABLE:
		if (d->state != KCOV_STATE_READY)
			return K_EINVAL;
		if (d->owner.tid != 0 || td->desc != NULL)
			return K_EBUSY;
		if (arg != KCOV_LINUX_TRACE_PC && arg != KCOV_LINUX_TRACE_CMP)
			return K_EINVAL;
		kcov_start_locked(d, td,
		    arg == KCOV_LINUX_TRACE_PC ? KCOV_TMODE_PC :
		                                 KCOV_TMODE_CMP);
		return 0;
	case KCOV_LINUX_DISABLE:
		if (arg != 0 || td->desc != d || !kcov_is_owner(d, td))
			return K_EINVAL;
		kcov_stop_locked(d, td);
		return 0;
	case KCOV_LINUX_REMOTE_ENABLE:
		/*
		 * Argument checks as Linux does them; a hosted process has no
		 * kernel threads or softirqs to collect from, so a well-formed
		 * request is refused as unsupported.
		 */
		if (kcov_plat_copyin(hdr, arg, sizeof(hdr)) != 0)
			return K_EFAULT;
		if (hdr[2] > 0x100)
			return K_EINVAL;
		if (d->state != KCOV_STATE_READY)
			return K_EINVAL;
		if (d->owner.tid != 0 || td->desc != NULL)
			return K_EBUSY;
		if (hdr[0] != KCOV_LINUX_TRACE_PC &&
		    hdr[0] != KCOV_LINUX_TRACE_CMP)
			return K_EINVAL;
		return KCOV_LINUX_ENOTSUPP;
	}
	return K_ENOTTY;
}

/* kcov_mmap: an area, offset 0 and the exact (page) length. */
KCOV_NOINSTR int
kcov_linux_mmap(const struct kcov_desc *d, const struct kcov_mmap_req *r,
    uint64_t *boff)
{
	if (!r->sized || r->off != 0 || r->rlen != d->entries * 8)
		return K_EINVAL;
	return 0;
}
