/*
 * <sys/coverage.h> for FreeBSD kcov clients on the hosted device: the
 * user-visible part of FreeBSD's sys/sys/coverage.h (spec bsd-kcov.md §1.1).
 * The kernel hook registration API (cov_register_pc() and friends) has no
 * meaning outside a kernel and is left out.  Like FreeBSD's header it
 * refuses to be included from user space on its own.
 */
#ifndef _SYS_COVERAGE_H_
#define _SYS_COVERAGE_H_

#if !defined(_KERNEL) && !defined(_SYS_KCOV_H_)
#error Do not include this file directly in userland. Use sys/kcov.h instead
#endif

#define COV_CMP_CONST       (1 << 0)
#define COV_CMP_SIZE(x)     ((x) << 1)
#define COV_CMP_MASK        (3 << 1)
#define COV_CMP_GET_SIZE(x) (((x) >> 1) & 3)

#endif /* !_SYS_COVERAGE_H_ */
