/*
 * module.c - the per-image half of the hosted profile runtime.
 *
 * kcov-build --sbcc links this object into every executable and shared
 * object it links (kcovprof-module-v8.o, -v10.o, or the version-agnostic
 * kcovprof-module.o).  The linker resolves the hidden __start_/__stop_
 * symbols below to *this image's* profile sections, exactly as it does for
 * compiler-rt's copy of its runtime in each image; the constructor hands
 * them to the one registry of the process in libkcovrt (hosted.c), and the
 * destructor, which runs when the image goes away (exit, dlclose), has the
 * registry write the image's profile.
 *
 * It also defines __llvm_profile_runtime.  When -fprofile-instr-generate or
 * -fprofile-generate is on a link line, the clang driver adds
 * -u__llvm_profile_runtime and libclang_rt.profile.a after the user's
 * inputs; with the symbol already defined here, ld pulls nothing from that
 * archive, so compiler-rt's runtime never ends up in the image next to ours.
 *
 * And it defines the value-profiling entry points IR PGO code calls
 * (__llvm_profile_instrument_target, _memop), hidden, one copy per image as
 * with compiler-rt: each forwards to value.c with this image's pool, the
 * __llvm_prf_vnds section, to which it adds compiler-rt's 1024 nodes.  The
 * pool is set up statically, so values recorded by constructors that run
 * before ours are kept, as with compiler-rt.
 *
 * KCOVPROF_EXPECT (8, 10, or 0 for "unknown") is the raw version of the
 * clang kcov-build compiles with; kcovprof.h explains why it matters.
 */
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kcovprof.h"
#include "kcov/noinstr.h"

#ifndef KCOVPROF_EXPECT
#define KCOVPROF_EXPECT 0
#endif

#define KP_SECTION(sec)                                  \
	extern char __start_##sec[]                      \
	    __attribute__((weak, visibility("hidden"))); \
	extern char __stop_##sec[] __attribute__((weak, visibility("hidden")))

KP_SECTION(__llvm_prf_data);
KP_SECTION(__llvm_prf_cnts);
KP_SECTION(__llvm_prf_bits);
KP_SECTION(__llvm_prf_names);
KP_SECTION(__llvm_prf_vnds);

/* compiler-rt's lprofValueProfNodes: the same count, alignment and place
 * (after the compiler's nodes), so the pool holds as many nodes as
 * compiler-rt's would and %m names files alike (kcovprof_signature). */
static struct kcovprof_vnode kp_vnodes[KCOVPROF_VNODE_POOL]
    __attribute__((section("__llvm_prf_vnds"), used, aligned(16)));

/* kcovprof_values_offset(KCOVPROF_EXPECT), as a constant for the static
 * pool; the version-agnostic object learns it in the constructor. */
#if KCOVPROF_EXPECT == 8
#define KP_VALUES_OFF (16 + 2 * sizeof(void *))
#elif KCOVPROF_EXPECT == 10
#define KP_VALUES_OFF (16 + 3 * sizeof(void *))
#else
#define KP_VALUES_OFF 0
#endif

static struct kcovprof_vpool kp_vpool = {
	.cur = (struct kcovprof_vnode *)(void *)__start___llvm_prf_vnds,
	.end = (struct kcovprof_vnode *)(void *)__stop___llvm_prf_vnds,
	.values_off = KP_VALUES_OFF,
	.max_per_site = KCOVPROF_VP_PER_SITE,
};

/* Defined by the compiler for IR PGO and single-byte coverage only. */
extern const uint64_t __llvm_profile_raw_version
    __attribute__((weak, visibility("hidden")));
/* Defined by the compiler for -fprofile-instr-generate=PATH. */
extern const char __llvm_profile_filename[]
    __attribute__((weak, visibility("hidden")));
/* Defined by GNU ld and lld in every image: its ELF header, if loaded. */
extern const ElfW(Ehdr) __ehdr_start
    __attribute__((weak, visibility("hidden")));

/* Satisfies the driver's -u__llvm_profile_runtime (see above). */
int __llvm_profile_runtime __attribute__((visibility("hidden"), used)) = 0;

static struct kcovprof_module kp_module;

/* --- Value profiling: the compiler's entry points ----------------------------- */

KCOV_NOINSTR void
__llvm_profile_instrument_target(uint64_t value, void *data, uint32_t index)
{
	kcovprof_value_target(&kp_vpool, value, data, index);
}

KCOV_NOINSTR void
__llvm_profile_instrument_memop(uint64_t size, void *data, uint32_t index)
{
	kcovprof_value_memop(&kp_vpool, size, data, index);
}

/* Not emitted by clang 14-19, but part of compiler-rt's value API. */
KCOV_NOINSTR void
__llvm_profile_instrument_target_value(uint64_t value, void *data,
    uint32_t index, uint64_t count)
{
	kcovprof_value_add(&kp_vpool, value, data, index, count);
}

/* compiler-rt's lprofSetupValueProfiler: the same environment knob. */
KCOV_NOINSTR static void
kp_value_setup(const struct kcovprof_module *m)
{
	const char *s = getenv("LLVM_VP_MAX_NUM_VALS_PER_SITE");

	if (s != NULL && s[0] != '\0') {
		long n = atol(s);

		kp_vpool.max_per_site = n < 0 || n > KCOVPROF_VP_PER_SITE_MAX ?
		    KCOVPROF_VP_PER_SITE_MAX :
		    (uint32_t)n;
	}
	if (kp_vpool.values_off == 0 && m->status == KCOVPROF_OK)
		kp_vpool.values_off =
		    kcovprof_values_offset((uint32_t)m->version);
}

/*
 * The image's GNU build ID, as compiler-rt writes it into the profile's
 * binary ID section: the NT_GNU_BUILD_ID note of a PT_NOTE segment, found
 * through this image's own program headers.
 */
KCOV_NOINSTR static void
kp_build_id(struct kcovprof_module *m)
{
	const ElfW(Ehdr) *eh = &__ehdr_start;
	const ElfW(Phdr) * ph;
	uintptr_t bias = 0;
	int i, have = 0;

	if (eh == NULL || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return;
	ph = (const ElfW(Phdr) *)(const void *)((const char *)eh + eh->e_phoff);
	for (i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0) {
			bias = (uintptr_t)eh - ph[i].p_vaddr;
			have = 1;
			break;
		}
	}
	for (i = 0; have && i < eh->e_phnum; i++) {
		const char *p, *end;
		uintptr_t align = ph[i].p_align == 8 ? 8 : 4;

		if (ph[i].p_type != PT_NOTE)
			continue;
		p = (const char *)(bias + ph[i].p_vaddr);
		end = p + ph[i].p_filesz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *n =
			    (const ElfW(Nhdr) *)(const void *)p;
			const char *name = p + sizeof(*n);
			const char *desc =
			    name + ((n->n_namesz + align - 1) & ~(align - 1));

			if (desc + n->n_descsz > end)
				break;
			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
			    memcmp(name, "GNU", 4) == 0 && n->n_descsz > 0 &&
			    n->n_descsz <= KCOVPROF_BUILD_ID_MAX) {
				memcpy(m->build_id, desc, n->n_descsz);
				m->build_id_len = n->n_descsz;
				return;
			}
			p = desc + ((n->n_descsz + align - 1) & ~(align - 1));
		}
	}
}

KCOV_NOINSTR __attribute__((constructor)) static void
kp_module_ctor(void)
{
	struct kcovprof_module *m = &kp_module;

	m->abi = KCOVPROF_MODULE_ABI;
	m->expect = KCOVPROF_EXPECT;
	m->raw_version_var = &__llvm_profile_raw_version;
	m->sec.data_begin = __start___llvm_prf_data;
	m->sec.data_end = __stop___llvm_prf_data;
	m->sec.cnts_begin = __start___llvm_prf_cnts;
	m->sec.cnts_end = __stop___llvm_prf_cnts;
	m->sec.bits_begin = __start___llvm_prf_bits;
	m->sec.bits_end = __stop___llvm_prf_bits;
	m->sec.names_begin = __start___llvm_prf_names;
	m->sec.names_end = __stop___llvm_prf_names;
	m->sec.vnds_begin = __start___llvm_prf_vnds;
	m->sec.vnds_end = __stop___llvm_prf_vnds;
	m->default_filename = __llvm_profile_filename != NULL &&
	        __llvm_profile_filename[0] != '\0' ?
	    __llvm_profile_filename :
	    NULL;
	m->vpool = &kp_vpool;
	kp_build_id(m);
	kcovprof_register(m);
	kp_value_setup(m);
}

KCOV_NOINSTR __attribute__((destructor)) static void
kp_module_dtor(void)
{
	kcovprof_unregister(&kp_module);
}
