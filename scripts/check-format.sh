#!/usr/bin/env bash
# Check that the C runtime (runtime/**/*.[ch]) is formatted as the
# repository's .clang-format says.  Exits 0 if it is; 1, after clang-format's
# diagnostics, if any file would change (reformat with clang-format-19 -i);
# 69 (EX_UNAVAILABLE) if clang-format-19 is not installed.
#
#   scripts/check-format.sh            CLANG_FORMAT=clang-format-19 by default
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cf=${CLANG_FORMAT:-clang-format-19}

if ! command -v "$cf" >/dev/null 2>&1; then
	echo "check-format: $cf not found (apt-get install clang-format-19)" >&2
	exit 69
fi

cd "$top"
mapfile -d '' files < <(find runtime -type f \( -name '*.c' -o -name '*.h' \) -print0 |
	LC_ALL=C sort -z)
if [ "${#files[@]}" -eq 0 ]; then
	echo "check-format: no C files under $top/runtime" >&2
	exit 1
fi
if ! "$cf" --style="file:$top/.clang-format" --dry-run --Werror "${files[@]}"; then
	echo "check-format: not formatted as .clang-format says;" \
	    "run: $cf -i <file>" >&2
	exit 1
fi
echo "check-format: ${#files[@]} files under runtime/ are formatted"
