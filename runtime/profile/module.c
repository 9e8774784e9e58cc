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
 * It also defines __llvm_profile_runtime.  When -fprofile-instr-generate is
 * on a link line, the clang driver adds -u__llvm_profile_runtime and
 * libclang_rt.profile.a after the user's inputs; with the symbol already
 * defined here, ld pulls nothing from that archive, so compiler-rt's runtime
 * never ends up in the image next to ours.
 *
 * KCOVPROF_EXPECT (8, 10, or 0 for "unknown") is the raw version of the
 * clang kcov-build compiles with; kcovprof.h explains why it matters.
 */
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <string.h>

#include "kcovprof.h"
#include "noinstr.h"

#ifndef KCOVPROF_EXPECT
#define KCOVPROF_EXPECT 0
#endif

#define KP_SECTION(sec)                                                        \
	extern char __start_##sec[] __attribute__((weak, visibility("hidden"))); \
	extern char __stop_##sec[] __attribute__((weak, visibility("hidden")))

KP_SECTION(__llvm_prf_data);
KP_SECTION(__llvm_prf_cnts);
KP_SECTION(__llvm_prf_bits);
KP_SECTION(__llvm_prf_names);
KP_SECTION(__llvm_prf_vnds);

/* Defined by the compiler for IR PGO and single-byte coverage only. */
extern const uint64_t __llvm_profile_raw_version __attribute__((weak, visibility("hidden")));
/* Defined by the compiler for -fprofile-instr-generate=PATH. */
extern const char __llvm_profile_filename[] __attribute__((weak, visibility("hidden")));
/* Defined by GNU ld and lld in every image: its ELF header, if loaded. */
extern const ElfW(Ehdr) __ehdr_start __attribute__((weak, visibility("hidden")));

/* Satisfies the driver's -u__llvm_profile_runtime (see above). */
int __llvm_profile_runtime __attribute__((visibility("hidden"), used)) = 0;

static struct kcovprof_module kp_module;

/*
 * The image's GNU build ID, as compiler-rt writes it into the profile's
 * binary ID section: the NT_GNU_BUILD_ID note of a PT_NOTE segment, found
 * through this image's own program headers.
 */
KCOVPROF_NOINSTR static void
kp_build_id(struct kcovprof_module *m)
{
	const ElfW(Ehdr) *eh = &__ehdr_start;
	const ElfW(Phdr) *ph;
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
			const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)(const void *)p;
			const char *name = p + sizeof(*n);
			const char *desc = name + ((n->n_namesz + align - 1) & ~(align - 1));

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

KCOVPROF_NOINSTR __attribute__((constructor)) static void
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
	m->default_filename =
	    __llvm_profile_filename != NULL && __llvm_profile_filename[0] != '\0'
	    ? __llvm_profile_filename : NULL;
	kp_build_id(m);
	kcovprof_register(m);
}

KCOVPROF_NOINSTR __attribute__((destructor)) static void
kp_module_dtor(void)
{
	kcovprof_unregister(&kp_module);
}
