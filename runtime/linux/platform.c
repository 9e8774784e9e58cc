// SPDX-License-Identifier: GPL-2.0
/*
 * platform.c - the engine's platform layer (../platform.h) for the Linux
 * kernel module, and the module's task tracking.
 *
 * Tasks.  A stock kernel keeps no kcov state in task_struct and exports no
 * hook for task switch or exit, so:
 *
 *  - an enabling task gets a struct kcov_task and a preempt notifier
 *    (CONFIG_PREEMPT_NOTIFIERS, on wherever KVM is).  sched_in stores the
 *    kcov_task in the per-CPU `kcov_cur`, sched_out clears it; the callbacks
 *    read `kcov_cur` (kcov_td.h).  A forked child starts with an empty
 *    notifier list (__sched_fork), so it never inherits tracing; exec keeps
 *    the task and so the tracing, as Linux does.
 *  - task exit is seen through the `sched_process_exit` tracepoint, found by
 *    name with for_each_kernel_tracepoint().  The probe runs in the exiting
 *    task with preemption disabled, so it only unhooks the task (notifier
 *    and `kcov_cur`) and queues a work item; the work does the engine's
 *    kcov_thread_exit() under the descriptor mutex and frees what is dead.
 *    Every ioctl first flushes queued exits, so a descriptor whose owner has
 *    exited is READY by the time anyone can ask (the owner may still be
 *    reaped later; the tracepoint fires after exit_mm(), where in-tree kcov
 *    stops at the top of do_exit(), a difference only for instrumented code
 *    that exit_mm() itself runs).
 *
 * The buffer is vmalloc_user() memory (zeroed, page-aligned, VM_USERMAP)
 * owned by an anonymous file; see device.c for why.
 *
 * Module lifetime: an open file pins the module (fops.owner); so does every
 * bound kcov_task (a reference taken at enable, dropped when the task is
 * unbound), which covers a DYING descriptor waiting for its owner's exit;
 * and every buffer file, which covers mappings that outlive the descriptor.
 */
#include <linux/anon_inodes.h>
#include <linux/atomic.h>
#include <linux/err.h>
#include <linux/mm.h>
#include <linux/file.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include "engine.h"
#include "platform.h"
#include "kcov_linux.h"
#include "kcov_td.h"

/* Largest buffer any ABI can ask for: Linux's INT_MAX / 8 entries. */
#define KCOV_BUF_MAX_BYTES (((size_t)INT_MAX / 8) * 8 + PAGE_SIZE)

DEFINE_PER_CPU(struct kcov_task *, kcov_cur);

atomic_t kcov_live_descs = ATOMIC_INIT(0);
atomic_t kcov_live_tasks = ATOMIC_INIT(0);
atomic_t kcov_live_bufs = ATOMIC_INIT(0);

static atomic_t kcov_exits_pending = ATOMIC_INIT(0);
static struct workqueue_struct *kcov_wq;
static struct tracepoint *kcov_tp_exit;

/* --- Preempt notifier: keeps kcov_cur pointing at the running owner ------ */

static notrace void
kcov_sched_in(struct preempt_notifier *pn, int cpu)
{
	this_cpu_write(kcov_cur, container_of(pn, struct kcov_task, pn));
}

static notrace void
kcov_sched_out(struct preempt_notifier *pn, struct task_struct *next)
{
	this_cpu_write(kcov_cur, NULL);
}

static struct preempt_ops kcov_preempt_ops = {
	.sched_in = kcov_sched_in,
	.sched_out = kcov_sched_out,
};

/* Unhook the calling task from the hot path.  Only the owner calls it. */
static void
kcov_task_unhook(struct kcov_task *kt)
{
	preempt_disable();
	preempt_notifier_unregister(&kt->pn);
	this_cpu_write(kcov_cur, NULL);
	preempt_enable();
}

static void
kcov_task_free(struct kcov_task *kt)
{
	bool bound = kt->bound;

	kfree(kt);
	if (bound) {
		atomic_dec(&kcov_live_tasks);
		module_put(THIS_MODULE);
	}
}

/* --- Task exit ----------------------------------------------------------- */

static void
kcov_exit_work(struct work_struct *w)
{
	struct kcov_task *kt = container_of(w, struct kcov_task, exit_work);
	struct kcov_desc *dead;

	dead = kcov_thread_exit(&kt->td);
	if (dead != NULL)
		kcov_file_free(kcov_file_of(dead));
	atomic_dec(&kcov_exits_pending);
	/* Last: may drop the module's last reference (rmmod then waits in
	 * destroy_workqueue() for this function to return). */
	kcov_task_free(kt);
}

/* sched_process_exit: preemption is off, so no sleeping work here. */
static notrace void
kcov_probe_exit(void *data, struct task_struct *p)
{
	struct kcov_task *kt = this_cpu_read(kcov_cur);

	if (kt == NULL || p != current || kt->task != p)
		return;
	preempt_notifier_unregister(&kt->pn);
	this_cpu_write(kcov_cur, NULL);
	atomic_inc(&kcov_exits_pending);
	queue_work(kcov_wq, &kt->exit_work);
}

void
kcov_flush_exits(void)
{
	if (atomic_read(&kcov_exits_pending) != 0)
		flush_workqueue(kcov_wq);
}

/* --- The calling task's state for an ioctl -------------------------------- */

/*
 * The bound kcov_task of the calling task, or a fresh unbound one (NULL when
 * out of memory).  Hand it back to kcov_task_settle() after the ioctl.
 */
struct kcov_task *
kcov_task_get(void)
{
	struct kcov_task *kt;

	preempt_disable();
	kt = this_cpu_read(kcov_cur);
	preempt_enable();
	if (kt != NULL && kt->task == current)
		return kt;
	kt = kzalloc(sizeof(*kt), GFP_KERNEL);
	if (kt == NULL)
		return NULL;
	kt->task = current;
	INIT_WORK(&kt->exit_work, kcov_exit_work);
	return kt;
}

/* After an ioctl: keep a task that is bound, free one that is not. */
void
kcov_task_settle(struct kcov_task *kt)
{
	if (!kt->bound) {
		kfree(kt);
	} else if (READ_ONCE(kt->td.desc) == NULL) {
		kcov_task_unhook(kt);
		kcov_task_free(kt);
	}
}

/* --- Buffers and descriptors ---------------------------------------------- */

static int
kcov_buf_release(struct inode *inode, struct file *f)
{
	struct kcov_buf *b = f->private_data;

	vfree(b->area);
	kfree(b);
	atomic_dec(&kcov_live_bufs);
	return 0;
}

static const struct file_operations kcov_buf_fops = {
	.owner = THIS_MODULE,
	.release = kcov_buf_release,
};

/* An anonymous file owning `area`; on failure the caller still owns it. */
struct file *
kcov_buf_file(void *area, size_t size)
{
	struct kcov_buf *b;
	struct file *f;

	b = kmalloc(sizeof(*b), GFP_KERNEL);
	if (b == NULL)
		return ERR_PTR(-ENOMEM);
	b->area = area;
	b->size = size;
	f = anon_inode_getfile("[kcov]", &kcov_buf_fops, b, O_RDWR);
	if (IS_ERR(f)) {
		kfree(b);
		return f;
	}
	atomic_inc(&kcov_live_bufs);
	return f;
}

/* Free a descriptor the engine has let go of; its mappings keep the buffer. */
void
kcov_file_free(struct kcov_file *kf)
{
	if (kf->bfile != NULL)
		fput(kf->bfile);
	mutex_destroy(&kf->lock);
	kfree(kf);
	atomic_dec(&kcov_live_descs);
}

/* --- platform.h ---------------------------------------------------------- */

int
kcov_plat_buf_alloc(struct kcov_desc *d, uint64_t bytes, void *pctx)
{
	struct kcov_file *kf = kcov_file_of(d);
	struct file *bf;
	void *area;

	/* The engine bounds the entries per ABI; this bounds the bytes. */
	if (bytes == 0 || bytes > KCOV_BUF_MAX_BYTES || !PAGE_ALIGNED(bytes))
		return ENOMEM;
	area = vmalloc_user((size_t)bytes);
	if (area == NULL)
		return ENOMEM;
	bf = kcov_buf_file(area, (size_t)bytes);
	if (IS_ERR(bf)) {
		vfree(area);
		return ENOMEM;
	}
	d->kbuf = area;
	/* mmap reads it without the lock (see device.c). */
	smp_store_release(&kf->bfile, bf);
	return 0;
}

uint64_t
kcov_plat_pagesize(void)
{
	return PAGE_SIZE;
}

void
kcov_plat_owner_set(struct kcov_owner *o, struct kcov_thread *td)
{
	o->pid = task_tgid_nr(current);
	o->tid = task_pid_nr(current);
	o->start = current->start_time;
	o->td = td;
}

/* The exit tracepoint always fires, so an owner is never gone unseen. */
int
kcov_plat_owner_gone(const struct kcov_owner *o)
{
	return 0;
}

int
kcov_plat_owner_is_current(const struct kcov_owner *o,
    const struct kcov_thread *td)
{
	return o->td == td && o->tid == task_pid_nr(current) &&
	    kcov_task_of((struct kcov_thread *)td)->task == current;
}

int
kcov_plat_copyin(void *dst, uintptr_t uaddr, size_t len)
{
	return copy_from_user(dst, (const void __user *)uaddr, len) ? EFAULT :
	                                                              0;
}

/* Enable: hook the calling task (the owner) into the hot path. */
void
kcov_plat_thread_bound(struct kcov_thread *td)
{
	struct kcov_task *kt = kcov_task_of(td);

	if (kt->bound)
		return;
	kt->bound = true;
	__module_get(THIS_MODULE);
	atomic_inc(&kcov_live_tasks);
	preempt_notifier_init(&kt->pn, &kcov_preempt_ops);
	preempt_disable();
	preempt_notifier_register(&kt->pn);
	this_cpu_write(kcov_cur, kt);
	preempt_enable();
}

void
kcov_plat_lock(struct kcov_desc *d)
{
	mutex_lock(&kcov_file_of(d)->lock);
}

void
kcov_plat_unlock(struct kcov_desc *d)
{
	mutex_unlock(&kcov_file_of(d)->lock);
}

/* GCC's float compares arrive here from fpcmp.c, as bit patterns. */
KCOV_NOINSTR notrace void
kcov_record_cmp(uint64_t type, uint64_t a, uint64_t b, uint64_t pc)
{
	struct kcov_desc *d = kcov_self_desc();

	if (kcov_unlikely(d != NULL))
		kcov_trace_cmp(d, type, a, b, pc);
}

/* --- Setup --------------------------------------------------------------- */

static void
kcov_find_tp(struct tracepoint *tp, void *priv)
{
	if (strcmp(tp->name, "sched_process_exit") == 0)
		*(struct tracepoint **)priv = tp;
}

int
kcov_linux_init(void)
{
	int err;

	for_each_kernel_tracepoint(kcov_find_tp, &kcov_tp_exit);
	if (kcov_tp_exit == NULL) {
		pr_err("kcov: no sched_process_exit tracepoint\n");
		return -ENOENT;
	}
	kcov_wq = alloc_workqueue("kcov_exit", 0, 0);
	if (kcov_wq == NULL)
		return -ENOMEM;
	err = tracepoint_probe_register(kcov_tp_exit, kcov_probe_exit, NULL);
	if (err != 0) {
		destroy_workqueue(kcov_wq);
		return err;
	}
	preempt_notifier_inc();
	return 0;
}

/*
 * Only once nothing is bound: every bound task holds a module reference.
 *
 * The preempt-notifier static key is left on (no preempt_notifier_dec()):
 * switching it patches __schedule() on every CPU with text_poke_bp(), and
 * under qemu's TCG that patching, repeated by every load and unload, once
 * in a few test runs left both vCPUs looping on the int3 at __schedule's
 * notifier branch (tests/kstress, vCPU state read through qemu's monitor).
 * Left on, the key is switched once per boot, at the first load; what it
 * costs afterwards is a test of an empty list per context switch.
 */
void
kcov_linux_exit(void)
{
	tracepoint_probe_unregister(kcov_tp_exit, kcov_probe_exit, NULL);
	tracepoint_synchronize_unregister();
	destroy_workqueue(kcov_wq);
}
