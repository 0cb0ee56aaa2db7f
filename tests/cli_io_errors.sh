#!/usr/bin/env bash
# Usage: cli_io_errors.sh PFLOW CONFIG OUTDIR
# A result that cannot be written is an I/O error (exit status 3), not bad input (2): a full
# disk (simulated by a file-size limit, so that writes fail with EFBIG as they would with ENOSPC)
# and a location nobody may write (/proc, read-only even for root; a mode-555 directory when not
# root). In every case no partial file is left and an earlier result survives untouched.
set -u
pflow=$1 config=$2 dir=$3/io_errors
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$dir" && mkdir -p "$dir"
out=$dir/result.h5

# An earlier, complete result.
"$pflow" run "$config" --out "$out" --quiet >/dev/null || fail "the first run failed"
cp "$out" "$dir/before.h5"

# Disk full: every write past 8 KiB fails (SIGXFSZ ignored, so write() returns EFBIG).
output=$( (trap '' XFSZ; ulimit -f 8; "$pflow" run "$config" --out "$out" --force --quiet) 2>&1)
status=$?
[ "$status" -eq 3 ] || fail "full disk: exit status $status, want 3: $output"
grep -q "I/O error" <<<"$output" || fail "full disk: no 'I/O error' in: $output"
cmp -s "$out" "$dir/before.h5" || fail "full disk: the earlier result was changed"
ls "$dir" | grep -q 'tmp' && fail "full disk: a temporary file was left: $(ls "$dir")"

# Disk full while the workers checkpoint their work (1 KiB: the first files after the config's
# fail), on two threads: the failure leaves a worker thread as an error, not as std::terminate.
# 8200 particles: the exact reference is three chunks of up to 4096 particles, handed to both
# workers, and each chunk's checkpoint (its states as raw doubles) exceeds 1 KiB.
/usr/bin/python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); c["init"] = {"count": 8200}
c["solvers"] = ["ddim"]; json.dump(c, open(sys.argv[2], "w"))' "$config" "$dir/many.json"
output=$( (trap '' XFSZ; ulimit -f 1; "$pflow" run "$dir/many.json" --out "$out" --force --quiet \
  --threads 2) 2>&1)
status=$?
[ "$status" -eq 3 ] || fail "full disk, two threads: exit status $status, want 3: $output"
grep -q "checkpoint/reference-[0-9]" <<<"$output" ||
  fail "full disk, two threads: not a reference chunk's checkpoint: $output"
cmp -s "$out" "$dir/before.h5" || fail "full disk, two threads: the earlier result was changed"
rm -rf "$out.checkpoint"

# A read-only location.
locations=(/proc/pflow-io-test/result.h5)
if [ "$(id -u)" -ne 0 ]; then
  mkdir -p "$dir/readonly" && chmod 555 "$dir/readonly"
  locations+=("$dir/readonly/result.h5")
fi
for target in "${locations[@]}"; do
  output=$("$pflow" run "$config" --out "$target" --quiet 2>&1)
  status=$?
  [ "$status" -eq 3 ] || fail "$target: exit status $status, want 3: $output"
  grep -q "I/O error: .*$(dirname "$target")" <<<"$output" ||
    fail "$target: the message does not name the I/O error and the path: $output"
  [ -e "$target" ] && fail "$target: a file was written"
done
[ -d "$dir/readonly" ] && chmod 755 "$dir/readonly"
echo "I/O errors: exit status 3 with the path named, nothing partial left (${#locations[@]} read-only location(s), full disk)"
