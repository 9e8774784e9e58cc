// SPDX-License-Identifier: GPL-2.0
/*
 * kprofile.c - kcov.ko's profile registry: the source-based coverage (and
 * PGO) profiles of kernel modules built with `kcov-build --sbcc`, read back
 * as raw profiles (.profraw) through debugfs:
 *
 *   /sys/kernel/debug/kcov-profile/<module>.profraw   (root, 0600)
 *     read:  a raw profile of the module, as llvm-profdata reads it; the
 *            snapshot is taken when the file is opened for reading
 *     write: anything resets the module's counters (and MC/DC bitmaps)
 *
 * The serialiser is the freestanding one of runtime/profile/profile.c; this
 * file only finds each module's profile sections and serves the files.
 *
 * Finding a module's sections.  A hosted image gets the bounds of its
 * __llvm_prf_* sections from the linker's __start_/__stop_ symbols, but a
 * kernel module is a relocatable object (ld -r), for which the linker
 * defines no such symbols, and the stock module loader forgets the section
 * table once the module is laid out.  So the bounds are made at link time:
 * kcov-build adds a linker script to the module's final link (kbuild's
 * LDFLAGS_MODULE) that gathers each profile section into one output
 * section with boundary symbols around it,
 *
 *   __llvm_prf_cnts 0 : ALIGN(8) { __kcovprof_cnts_begin = .;
 *                                  KEEP(*(__llvm_prf_cnts)) __kcovprof_cnts_end = .; }
 *
 * (as the 2021 CONFIG_PGO_CLANG patch did for vmlinux), plus the absolute
 * symbol __kcovprof_raw_version (the raw version of the clang that compiled
 * the module) and a data word referring to kcovprof_register, which makes
 * the module depend on kcov.ko: the loader refuses it without kcov.ko,
 * modprobe loads kcov.ko first, and kcov.ko cannot go while it is there.
 * The module itself carries no code of ours.
 *
 * kcov.ko registers the module from a module notifier: at MODULE_STATE_COMING
 * (relocated, before its init function runs, so the init code is counted)
 * it looks the symbols up in the module's own symbol table, which the
 * loader keeps complete in mod->kallsyms until init is done; at
 * MODULE_STATE_GOING (unload, or a failed init) it removes the file, whose
 * readers debugfs waits for, before the module's memory goes.  Why not the
 * alternatives:
 *   - code in the module (an init hook): modules have no constructors
 *     unless CONFIG_CONSTRUCTORS, and wrapping init_module would need
 *     code built with the kernel's exact flags (IBT, kCFI, return thunks);
 *   - link-order marker objects: ld -r puts LDFLAGS_MODULE objects before
 *     the module's, so there is no "last" object, and clang puts each
 *     function's counters and data in a COMDAT group of its own, which
 *     stays a separate section unless a linker script gathers it;
 *   - the kallsyms API: module_kallsyms_lookup_name, kallsyms_on_each_symbol
 *     and find_kallsyms_symbol_value are not exported in 6.1.
 * This needs CONFIG_KALLSYMS (for mod->kallsyms) and a module linked by
 * ld.lld: GNU ld -r keeps COMDAT group members apart even under a script
 * (kcov-build refuses --sbcc module builds against a GNU ld kernel).
 *
 * Modules can also register themselves (kcovprof_register, exported), with
 * m->glue set to their struct module (THIS_MODULE); they are removed at
 * their MODULE_STATE_GOING if they do not call kcovprof_unregister.
 *
 * Value profiling.  Code built for IR PGO (-fprofile-generate) calls
 * __llvm_profile_instrument_target/_memop, which kcov.ko exports: the data
 * record passed in tells the module, and the module's pool of value nodes
 * (vmalloc'ed at registration: its __llvm_prf_vnds share plus
 * KCOVPROF_VNODE_POOL, compiler-rt's static pool) feeds value.c.  Frontend
 * instrumentation (--sbcc) records no values and never calls them.
 */
#include <linux/debugfs.h>
#include <linux/export.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/notifier.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

#include "kcovprof.h"
#include "kprofile.h"

#define KPROF_DIR "kcov-profile"

struct kprof_entry {
	struct list_head node;      /* kprof_list, RCU for the value hooks */
	struct kcovprof_module *m;  /* the registered descriptor */
	struct kcovprof_module own; /* m == &own when found by the notifier */
	struct module *owner;       /* NULL: never removed by the notifier */
	struct dentry *file;
	/* value nodes (IR PGO), if m has value sites */
	struct kcovprof_vpool pool;
	struct kcovprof_vnode *nodes;
	char name[MODULE_NAME_LEN + 16];
};

/* One snapshot, taken at open for reading. */
struct kprof_snap {
	size_t len;
	char data[];
};

static LIST_HEAD(kprof_list);
static DEFINE_MUTEX(kprof_lock);
static struct dentry *kprof_dir;
static u64 kprof_next_id = 1;

/* --- The debugfs files ------------------------------------------------------ */

static int
kprof_open(struct inode *inode, struct file *file)
{
	struct kprof_entry *e = inode->i_private;
	struct kprof_snap *s;
	int64_t size, n = KCOVPROF_ENOSPC;
	int tries;

	file->private_data = NULL;
	if (!(file->f_mode & FMODE_READ))
		return 0;
	/*
	 * The debugfs proxy keeps e (and so the module) alive during open.
	 * Without value profiling the size is fixed; with it, values recorded
	 * between sizing and writing can make the profile grow: size again.
	 */
	for (tries = 0; tries < 8 && n == KCOVPROF_ENOSPC; tries++) {
		size = kcovprof_size(e->m);
		if (size < 0)
			return -EIO;
		s = vmalloc(sizeof(*s) + size);
		if (s == NULL)
			return -ENOMEM;
		n = kcovprof_write_buffer(e->m, s->data, size);
		if (n >= 0) {
			s->len = n;
			file->private_data = s;
			return 0;
		}
		vfree(s);
	}
	return n == KCOVPROF_ENOSPC ? -EAGAIN : -EIO;
}

static ssize_t
kprof_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	struct kprof_snap *s = file->private_data;

	if (s == NULL)
		return -EBADF;
	return simple_read_from_buffer(buf, count, ppos, s->data, s->len);
}

static ssize_t
kprof_write(struct file *file, const char __user *buf, size_t count,
    loff_t *ppos)
{
	struct kprof_entry *e = file_inode(file)->i_private;

	if (kcovprof_reset(e->m) != KCOVPROF_OK)
		return -EIO;
	return count;
}

static int
kprof_release(struct inode *inode, struct file *file)
{
	vfree(file->private_data);
	return 0;
}

static const struct file_operations kprof_fops = {
	.owner = THIS_MODULE,
	.open = kprof_open,
	.read = kprof_read,
	.write = kprof_write,
	.release = kprof_release,
	.llseek = default_llseek,
};

/* --- The registry -------------------------------------------------------------- */

/* Add e (m initialised) to the list and give it its file; kprof_lock held. */
static int
kprof_add(struct kprof_entry *e, const char *base)
{
	struct kprof_entry *o;
	int err, n = 0;

	err = kcovprof_module_init(e->m);
	if (err != KCOVPROF_OK) {
		pr_err("kcov: the profile of %s cannot be written: %s\n", base,
		    kcovprof_strerror(err));
		return err;
	}
	list_for_each_entry(o, &kprof_list, node) {
		if (o->m == e->m)
			return -EEXIST;
	}
	/* Unique file names: a second registration of one module gets -N. */
	snprintf(e->name, sizeof(e->name), "%s.profraw", base);
	for (;;) {
		bool clash = false;

		list_for_each_entry(o, &kprof_list, node)
			clash |= strcmp(o->name, e->name) == 0;
		if (!clash)
			break;
		snprintf(e->name, sizeof(e->name), "%s-%d.profraw", base, ++n);
	}
	if (e->m->vp_size != 0 && e->m->vpool == NULL) {
		/* IR PGO: compiler-rt's static pool, one per module: the nodes
		 * the compiler reserved (__llvm_prf_vnds) plus KCOVPROF_VNODE_POOL. */
		size_t cnt = KCOVPROF_VNODE_POOL +
		    (e->m->sec.vnds_end - e->m->sec.vnds_begin) /
		        sizeof(struct kcovprof_vnode);

		e->nodes = vzalloc(array_size(cnt, sizeof(*e->nodes)));
		if (e->nodes == NULL)
			return -ENOMEM;
		kcovprof_vpool_init(&e->pool, e->nodes, e->nodes + cnt,
		    (uint32_t)(e->m->version & 0xffffffffu));
		e->m->vpool = &e->pool;
	}
	e->m->id = kprof_next_id++;
	e->file = NULL;
	if (kprof_dir != NULL) {
		e->file = debugfs_create_file(e->name, 0600, kprof_dir, e,
		    &kprof_fops);
		if (IS_ERR(e->file))
			e->file = NULL;
	}
	list_add_tail_rcu(&e->node, &kprof_list);
	pr_info(
	    "kcov: profile of %s: raw v%u, %llu functions, %llu counters%s%s\n",
	    base, (unsigned int)(e->m->version & 0xffffffffu), e->m->num_data,
	    e->m->num_counters, e->file != NULL ? " in " KPROF_DIR "/" : "",
	    e->file != NULL ? e->name : "");
	return 0;
}

/* Remove e from the list and free it; kprof_lock held.  debugfs_remove
 * waits for the file's current readers and writers. */
static void
kprof_del(struct kprof_entry *e)
{
	list_del_rcu(&e->node);
	debugfs_remove(e->file);
	synchronize_rcu(); /* no value hook is still looking at e */
	if (e->m->vpool == &e->pool)
		e->m->vpool = NULL;
	vfree(e->nodes);
	kfree(e);
}

int
kcovprof_register(struct kcovprof_module *m)
{
	struct module *owner = m != NULL ? m->glue : NULL;
	struct kprof_entry *e;
	int err;

	if (m == NULL)
		return KCOVPROF_EINVAL;
	e = kzalloc(sizeof(*e), GFP_KERNEL);
	if (e == NULL)
		return -ENOMEM;
	e->m = m;
	e->owner = owner;
	mutex_lock(&kprof_lock);
	err = kprof_add(e, owner != NULL ? module_name(owner) : "anonymous");
	mutex_unlock(&kprof_lock);
	if (err != 0)
		kfree(e);
	return err;
}
EXPORT_SYMBOL(kcovprof_register);

void
kcovprof_unregister(struct kcovprof_module *m)
{
	struct kprof_entry *e, *tmp;

	mutex_lock(&kprof_lock);
	list_for_each_entry_safe(e, tmp, &kprof_list, node) {
		if (e->m == m)
			kprof_del(e);
	}
	mutex_unlock(&kprof_lock);
}
EXPORT_SYMBOL(kcovprof_unregister);

/* --- Value profiling (IR PGO) -------------------------------------------------- */

/*
 * The compiler's hooks, for modules built with -fprofile-generate: `data`
 * is the calling function's data record, which tells the module.  Hot
 * path: an RCU walk of the registered modules, no lock, no allocation.  A
 * value of a module kcov.ko does not know (registration refused) is dropped.
 */
static struct kcovprof_vpool *
kprof_pool_of(const void *data)
{
	struct kprof_entry *e;
	struct kcovprof_vpool *p = NULL;

	list_for_each_entry_rcu(e, &kprof_list, node) {
		const char *b = e->m->sec.data_begin, *end = e->m->sec.data_end;

		if ((const char *)data >= b && (const char *)data < end) {
			p = e->m->vpool;
			break;
		}
	}
	return p;
}

void __llvm_profile_instrument_target(uint64_t value, void *data,
    uint32_t index);
void __llvm_profile_instrument_memop(uint64_t size, void *data, uint32_t index);

void notrace
__llvm_profile_instrument_target(uint64_t value, void *data, uint32_t index)
{
	struct kcovprof_vpool *p;

	rcu_read_lock();
	p = kprof_pool_of(data);
	if (p != NULL)
		kcovprof_value_target(p, value, data, index);
	rcu_read_unlock();
}
EXPORT_SYMBOL(__llvm_profile_instrument_target);

void notrace
__llvm_profile_instrument_memop(uint64_t size, void *data, uint32_t index)
{
	struct kcovprof_vpool *p;

	rcu_read_lock();
	p = kprof_pool_of(data);
	if (p != NULL)
		kcovprof_value_memop(p, size, data, index);
	rcu_read_unlock();
}
EXPORT_SYMBOL(__llvm_profile_instrument_memop);

/* --- Modules built by kcov-build --sbcc --------------------------------------- */

#ifdef CONFIG_KALLSYMS
enum {
	KS_DATA_B,
	KS_DATA_E,
	KS_CNTS_B,
	KS_CNTS_E,
	KS_BITS_B,
	KS_BITS_E,
	KS_NAMES_B,
	KS_NAMES_E,
	KS_VNDS_B,
	KS_VNDS_E,
	KS_RAW,
	KS_IRVER,
	KS_N
};

struct kprof_syms {
	unsigned long v[KS_N];
	bool have[KS_N];
};

static const char *const kprof_symnames[] = {
	[KS_DATA_B] = "__kcovprof_data_begin",
	[KS_DATA_E] = "__kcovprof_data_end",
	[KS_CNTS_B] = "__kcovprof_cnts_begin",
	[KS_CNTS_E] = "__kcovprof_cnts_end",
	[KS_BITS_B] = "__kcovprof_bits_begin",
	[KS_BITS_E] = "__kcovprof_bits_end",
	[KS_NAMES_B] = "__kcovprof_names_begin",
	[KS_NAMES_E] = "__kcovprof_names_end",
	[KS_VNDS_B] = "__kcovprof_vnds_begin",
	[KS_VNDS_E] = "__kcovprof_vnds_end",
	[KS_RAW] = "__kcovprof_raw_version",
	[KS_IRVER] = "__llvm_profile_raw_version",
};

/*
 * The symbols of a COMING module.  Until its init is done, mod->kallsyms is
 * the module's whole symbol table (every symbol, values already absolute);
 * afterwards only the "core" symbols (text, with CONFIG_KALLSYMS_ALL data)
 * stay, which is why this runs from the notifier and not later.
 */
static void
kprof_lookup(struct module *mod, struct kprof_syms *out)
{
	struct mod_kallsyms *ks;
	unsigned int i, k;

	memset(out, 0, sizeof(*out));
	preempt_disable();
	ks = rcu_dereference_sched(mod->kallsyms);
	for (i = 1; ks != NULL && i < ks->num_symtab; i++) {
		const Elf_Sym *sym = &ks->symtab[i];
		const char *name = ks->strtab + sym->st_name;

		if (sym->st_shndx == SHN_UNDEF || name[0] != '_' ||
		    name[1] != '_')
			continue;
		for (k = 0; k < ARRAY_SIZE(kprof_symnames); k++) {
			if (!out->have[k] &&
			    strcmp(name, kprof_symnames[k]) == 0) {
				out->v[k] = sym->st_value;
				out->have[k] = true;
			}
		}
	}
	preempt_enable();
}

static void
kprof_module_coming(struct module *mod)
{
	struct kprof_syms s;
	struct kprof_entry *e;
	struct kcovprof_module *m;
	int k;

	kprof_lookup(mod, &s);
	if (!s.have[KS_DATA_B])
		return; /* not built by kcov-build --sbcc */
	for (k = KS_DATA_B; k <= KS_NAMES_E; k++) {
		if (!s.have[k] && k != KS_BITS_B && k != KS_BITS_E) {
			pr_err(
			    "kcov: %s: %s is missing; not registering its profile\n",
			    module_name(mod), kprof_symnames[k]);
			return;
		}
	}
	e = kzalloc(sizeof(*e), GFP_KERNEL);
	if (e == NULL) {
		pr_err("kcov: %s: out of memory; not registering its profile\n",
		    module_name(mod));
		return;
	}
	m = &e->own;
	m->abi = KCOVPROF_MODULE_ABI;
	m->expect = s.have[KS_RAW] ? (uint32_t)s.v[KS_RAW] : 0;
	m->raw_version_var =
	    s.have[KS_IRVER] ? (const uint64_t *)s.v[KS_IRVER] : NULL;
	m->sec.data_begin = (const char *)s.v[KS_DATA_B];
	m->sec.data_end = (const char *)s.v[KS_DATA_E];
	m->sec.cnts_begin = (char *)s.v[KS_CNTS_B];
	m->sec.cnts_end = (char *)s.v[KS_CNTS_E];
	if (s.have[KS_BITS_B] && s.have[KS_BITS_E]) {
		m->sec.bits_begin = (char *)s.v[KS_BITS_B];
		m->sec.bits_end = (char *)s.v[KS_BITS_E];
	}
	m->sec.names_begin = (const char *)s.v[KS_NAMES_B];
	m->sec.names_end = (const char *)s.v[KS_NAMES_E];
	if (s.have[KS_VNDS_B] && s.have[KS_VNDS_E]) {
		m->sec.vnds_begin = (const char *)s.v[KS_VNDS_B];
		m->sec.vnds_end = (const char *)s.v[KS_VNDS_E];
	}
	m->glue = mod;
	e->m = m;
	e->owner = mod;
	mutex_lock(&kprof_lock);
	if (kprof_add(e, module_name(mod)) != 0)
		kfree(e);
	mutex_unlock(&kprof_lock);
}
#else
static void
kprof_module_coming(struct module *mod)
{
}
#endif

static void
kprof_module_going(struct module *mod)
{
	struct kprof_entry *e, *tmp;

	mutex_lock(&kprof_lock);
	list_for_each_entry_safe(e, tmp, &kprof_list, node) {
		if (e->owner == mod)
			kprof_del(e);
	}
	mutex_unlock(&kprof_lock);
}

static int
kprof_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	struct module *mod = data;

	if (action == MODULE_STATE_COMING)
		kprof_module_coming(mod);
	else if (action == MODULE_STATE_GOING)
		kprof_module_going(mod);
	return NOTIFY_OK;
}

static struct notifier_block kprof_nb = {
	.notifier_call = kprof_notify,
};

int
kcov_profile_init(void)
{
	int err;

	if (debugfs_initialized()) {
		kprof_dir = debugfs_create_dir(KPROF_DIR, NULL);
		if (IS_ERR(kprof_dir))
			kprof_dir = NULL;
	}
	err = register_module_notifier(&kprof_nb);
	if (err != 0) {
		debugfs_remove(kprof_dir);
		kprof_dir = NULL;
	}
	return err;
}

void
kcov_profile_exit(void)
{
	struct kprof_entry *e, *tmp;

	unregister_module_notifier(&kprof_nb);
	mutex_lock(&kprof_lock);
	list_for_each_entry_safe(e, tmp, &kprof_list, node)
		kprof_del(e);
	mutex_unlock(&kprof_lock);
	debugfs_remove(kprof_dir);
	kprof_dir = NULL;
}

#ifdef KCOV_PROFILE_ONLY
/*
 * On a kernel with its own CONFIG_KCOV, vmlinux has the coverage callbacks
 * and /sys/kernel/debug/kcov, and kcov.ko is the profile registry alone.
 */
static int __init
kcov_profile_module_init(void)
{
	int err = kcov_profile_init();

	if (err == 0)
		pr_info(
		    "kcov: profile registry ready (the kernel has its own kcov)\n");
	return err;
}

static void __exit
kcov_profile_module_exit(void)
{
	kcov_profile_exit();
}

module_init(kcov_profile_module_init);
module_exit(kcov_profile_module_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kcov profile registry: source-based coverage profiles of "
                   "kernel modules built by kcov-build --sbcc");
#endif
