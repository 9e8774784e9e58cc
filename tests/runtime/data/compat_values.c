/*
 * compat_values.c - print every constant of one compat header as
 * "NAME VALUE" lines, so tests/runtime can compare them with the spec's
 * tables and, for Linux, with the system's own <linux/kcov.h>.
 * Build with -DOS_FREEBSD, -DOS_NETBSD, -DOS_OPENBSD or -DOS_LINUX.
 */
#include <stddef.h>
#include <stdio.h>
#include <sys/ioctl.h>

#if defined(OS_LINUX)
#include <linux/kcov.h>
#else
#include <sys/kcov.h>
#endif

#define	P(name)	printf("%s 0x%llx\n", #name, (unsigned long long)(name))

int
main(void)
{
#if defined(OS_FREEBSD)
	P(KCOV_MAXENTRIES);
	P(KCOV_ENTRY_SIZE);
	P(KCOV_MODE_TRACE_PC);
	P(KCOV_MODE_TRACE_CMP);
	P(KIOENABLE);
	P(KIODISABLE);
	P(KIOSETBUFSIZE);
	P(KCOV_CMP_CONST);
	P(KCOV_CMP_SIZE(0));
	P(KCOV_CMP_SIZE(1));
	P(KCOV_CMP_SIZE(2));
	P(KCOV_CMP_SIZE(3));
	P(KCOV_CMP_MASK);
	P(KCOV_CMP_GET_SIZE(7));
	P(KCOV_CMP_GET_SIZE(4));
#elif defined(OS_NETBSD)
	P(KCOV_IOC_SETBUFSIZE);
	P(KCOV_IOC_ENABLE);
	P(KCOV_IOC_DISABLE);
	P(KCOV_IOC_REMOTE_ATTACH);
	P(KCOV_IOC_REMOTE_DETACH);
	P(KCOV_REMOTE_VHCI);
	P(KCOV_REMOTE_VHCI_ID(3, 5));
	P(KCOV_REMOTE_VHCI_ID(1, 0x1ffffffffULL));
	P(KCOV_MODE_NONE);
	P(KCOV_MODE_TRACE_PC);
	P(KCOV_MODE_TRACE_CMP);
	P(KCOV_ENTRY_SIZE);
	P(sizeof(kcov_int_t));
	P(sizeof(struct kcov_ioc_remote_attach));
	P(offsetof(struct kcov_ioc_remote_attach, id));
#elif defined(OS_OPENBSD)
	P(KIOSETBUFSIZE);
	P(KIOENABLE);
	P(KIODISABLE);
	P(KIOREMOTEATTACH);
	P(KCOV_MODE_NONE);
	P(KCOV_MODE_TRACE_PC);
	P(KCOV_MODE_TRACE_CMP);
	P(KCOV_REMOTE_COMMON);
	P(sizeof(struct kio_remote_attach));
	P(offsetof(struct kio_remote_attach, id));
#elif defined(OS_LINUX)
	P(KCOV_INIT_TRACE);
	P(KCOV_ENABLE);
	P(KCOV_DISABLE);
	P(KCOV_REMOTE_ENABLE);
	P(KCOV_TRACE_PC);
	P(KCOV_TRACE_CMP);
	P(KCOV_CMP_CONST);
	P(KCOV_CMP_SIZE(0));
	P(KCOV_CMP_SIZE(3));
	P(KCOV_CMP_MASK);
	P(KCOV_SUBSYSTEM_COMMON);
	P(KCOV_SUBSYSTEM_USB);
	P(KCOV_SUBSYSTEM_MASK);
	P(KCOV_INSTANCE_MASK);
	P(KCOV_REMOTE_MAX_HANDLES);
	P(sizeof(struct kcov_remote_arg));
	P(offsetof(struct kcov_remote_arg, trace_mode));
	P(offsetof(struct kcov_remote_arg, area_size));
	P(offsetof(struct kcov_remote_arg, num_handles));
	P(offsetof(struct kcov_remote_arg, common_handle));
	P(offsetof(struct kcov_remote_arg, handles));
	P(kcov_remote_handle(KCOV_SUBSYSTEM_USB, 0x42));
	P(kcov_remote_handle(KCOV_SUBSYSTEM_COMMON, 0x100000000ULL));
	P(kcov_remote_handle(0x1ULL << 40, 1));
#else
#error define OS_FREEBSD, OS_NETBSD, OS_OPENBSD or OS_LINUX
#endif
	return (0);
}
