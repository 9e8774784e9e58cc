"""kcov-build config: read a kernel configuration and say whether kcov is on.

    kcov-build config FILE [FILE ...] [--os auto|freebsd|linux|netbsd|openbsd]
                      [--search DIR ...] [--write OUT] [--compiler CC]
                      [-r | --redundant] [--json]

A kernel only has kcov when its configuration asks for it, and each kernel
asks differently (spec bsd-kcov.md §1.2 and the table at its top,
linux-kcov.md §3.1):

  FreeBSD   options COVERAGE   instruments the kernel (sys/conf/kern.pre.mk)
            options KCOV       /dev/kcov, the consumer of the coverage hooks
  NetBSD    makeoptions KCOV=1 compiles with -fsanitize-coverage (kcov(4))
            options KCOV       /dev/kcov
  OpenBSD   pseudo-device kcov /dev/kcov; the count is conventionally 1
  Linux     CONFIG_KCOV=y, CONFIG_DEBUG_FS=y (/sys/kernel/debug/kcov lives in
            debugfs), CONFIG_KCOV_ENABLE_COMPARISONS=y (comparison records),
            CONFIG_KCOV_INSTRUMENT_ALL=y (otherwise only files that opt in
            are instrumented, and allnoconfig/tinyconfig turn it off)

Reading follows the real tools, so that the verdict matches what the kernel
build will do:

* BSD files are read the way config(8) reads them: '#' comments, a line that
  starts with a blank continues the previous one, statements apply in order.
  FreeBSD `nooptions X` after `options X` is legal and removes it (config.y
  rmopt_schedule), so it is no conflict; the conflict we report is a second
  `machine` with another value, which FreeBSD's config.y rejects.  NetBSD
  (sem.c, current) warns and replaces a repeated `options`, but a repeated
  `pseudo-device` or `no pseudo-device` of an undefined one is an error.
  OpenBSD's config(8) rejects any repeated `option`, `makeoptions` or
  `pseudo-device`.
* `include` is resolved against the including file's directory, then the
  places config(8) itself looks (FreeBSD: ../../conf next to it; NetBSD and
  OpenBSD: the source root, three levels above the top-level conf
  directory), then each --search DIR.  An include that is not found is not
  an error: config files for GENERIC-based kernels are routinely read
  without a source tree.  It is reported on stderr and in the report as
  "not read", and coverage is judged from the files that were read (GENERIC
  does not enable coverage on any of the three).  A missing top-level FILE
  is an error (66).  An include cycle is a data error (65).
* Linux fragments are merged in order with the semantics of
  scripts/kconfig/merge_config.sh -m: the first FILE is the base, a later
  fragment's assignment replaces every earlier line naming the symbol, and
  each redefinition is reported on stderr in merge_config.sh's words ("Value
  of CONFIG_X is redefined by fragment F:").  -r also reports redundant
  repeats, like merge_config.sh -r.  Inside one fragment merge_config.sh
  notices nothing and Kconfig would only warn "override: reassigning"; a
  fragment that gives one symbol two different values contradicts itself,
  so that is reported as a conflict (65).

--write OUT writes the merged configuration atomically, with whatever
coverage options were missing added at the end: for Linux the merged
fragment (as merge_config.sh -m writes it; the added options are merged as
one more fragment), for the BSDs one flattened file with every include that
was read inlined between marker comments and every include that was not
read kept as an include line.

--compiler CC compiles a small C file with -fsanitize-coverage=trace-pc and
with -fsanitize-coverage=trace-cmp, each on its own, and reports which the
compiler rejects.

Exit status: 0 coverage is on (with --write: in the written file; with
--compiler: and the compiler accepts both flags), 1 it is not (the report
names what is missing), 64 bad usage, 65 malformed or contradictory
configuration, include cycle, or an OS that cannot be told apart, 66 a FILE
does not exist, 69 the compiler cannot be run, 73 OUT cannot be written.
"""
from __future__ import annotations

from .cli import (ADDED_FRAGMENT, ADDED_HEADER, added_lines, check_compiler, detect_os, main, read_config,
                  with_coverage)
from .linux import merge_fragments, parse_fragment, read_values
from .model import COMPILER_FLAGS, OSES, REQUIREMENTS, ConfigError, Requirement, Result, Unresolved, Where

__all__ = ["ADDED_FRAGMENT", "ADDED_HEADER", "COMPILER_FLAGS", "OSES", "REQUIREMENTS", "ConfigError",
           "Requirement", "Result", "Unresolved", "Where", "added_lines", "check_compiler", "detect_os",
           "main", "merge_fragments", "parse_fragment", "read_config", "read_values", "with_coverage"]
