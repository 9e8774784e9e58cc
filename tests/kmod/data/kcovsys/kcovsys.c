// SPDX-License-Identifier: GPL-2.0
/*
 * kcovsys.ko - instrumented kernel code on the system call path.
 *
 * Linux's kcov.rst examples trace read(-1, NULL, 0), which on a kernel with
 * CONFIG_KCOV records the PCs of ksys_read() and __fdget_pos().  The stock
 * Debian kernel is not instrumented, so with kcov.ko alone that call records
 * nothing.  This module puts instrumented code on every system call's path:
 * a probe on the raw_syscalls:sys_enter tracepoint, which runs in the task
 * context of the calling task (preemption disabled, never in an interrupt),
 * so kcov records it for the task that enabled tracing, like any other code
 * of the system call.  The probe looks at the system call number and the
 * first argument, so read(-1, ...) takes a path of its own and TRACE_CMP
 * sees the comparisons with __NR_read and with the descriptor.
 *
 * /sys/module/kcovsys/parameters/reads counts the read(-1, ...) calls seen.
 * Built with trace-pc and trace-cmp, its callbacks resolve to kcov.ko.
 */
#include <linux/atomic.h>
#include <linux/module.h>
#include <linux/ptrace.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <asm/unistd.h>

static int reads;
module_param(reads, int, 0444);
MODULE_PARM_DESC(reads, "read(-1, ...) calls seen");

static struct tracepoint *kcovsys_tp;
static volatile long kcovsys_sink;

static noinline void
kcovsys_bad_read(long fd, unsigned long count)
{
	if (count == 0)
		WRITE_ONCE(reads, READ_ONCE(reads) + 1);
	else
		kcovsys_sink += count;
	if (fd < -1)
		kcovsys_sink -= fd;
}

static void
kcovsys_probe(void *data, struct pt_regs *regs, long id)
{
	long fd = (int)regs->di;

	if (id == __NR_read && fd == -1)
		kcovsys_bad_read(fd, regs->dx);
	else if (id == __NR_write && fd < 0)
		kcovsys_sink++;
}

static void
kcovsys_find(struct tracepoint *tp, void *priv)
{
	if (strcmp(tp->name, "sys_enter") == 0)
		kcovsys_tp = tp;
}

static int __init
kcovsys_init(void)
{
	for_each_kernel_tracepoint(kcovsys_find, NULL);
	if (kcovsys_tp == NULL)
		return -ENOENT;
	return tracepoint_probe_register(kcovsys_tp, kcovsys_probe, NULL);
}

static void __exit
kcovsys_exit(void)
{
	tracepoint_probe_unregister(kcovsys_tp, kcovsys_probe, NULL);
	tracepoint_synchronize_unregister();
}

module_init(kcovsys_init);
module_exit(kcovsys_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("instrumented sys_enter probe for kcov.ko's kcov.rst tests");
