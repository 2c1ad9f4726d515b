#!/usr/bin/env bash
# Builds PBTWave's default speech corpus: every spoken prompt of Debian's
# asterisk-core-sounds-en-g722 (voice: Allison Smith, CC-BY-SA-3.0), decoded
# with ffmpeg to 16 kHz mono 16-bit WAV, plus a manifest and a deterministic
# train/validation split. See datasets/README.md.
#
# Usage: bash datasets/build-corpus.sh [--force] [OUTPUT_DIR]
#   OUTPUT_DIR  default: $PBTWAVE_CORPUS, else <repo>/corpus (gitignored)
#   --force     decode every file again, even when the corpus is up to date
# Environment:
#   PBTWAVE_CORPUS      output directory (when no OUTPUT_DIR argument)
#   PBTWAVE_SOUNDS_DIR  source directory (default: the package's en_US_f_Allison)
#   PBTWAVE_JOBS        parallel ffmpeg processes (default 2)
#
# Output (all paths in the lists are relative to OUTPUT_DIR):
#   <prompt path>.wav   one per prompt, keeping the package's folder structure
#   manifest.tsv        header, then: file, seconds, samples, sha256 (of the WAV)
#   train.txt           files of the training split, one per line, sorted
#   validation.txt      files of the validation split, one per line, sorted
#   skipped.tsv         source prompts left out, with the reason
#   .stamp / .complete  build identity (package version, script, ffmpeg); a
#                       run whose identity matches .complete only checks that
#                       the files are there and prints the summary.
#
# Idempotent: files already decoded under the same identity are not decoded
# again, so an interrupted build resumes; a changed identity (new package,
# edited script, other ffmpeg) rebuilds everything.
set -euo pipefail
export LC_ALL=C

package=asterisk-core-sounds-en-g722
sample_rate=16000

force=0
out=""
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "build-corpus: unknown option $arg (see --help)" >&2; exit 2 ;;
    *) [ -z "$out" ] || { echo "build-corpus: only one OUTPUT_DIR, got '$out' and '$arg'" >&2; exit 2; }
       out=$arg ;;
  esac
done
script_path=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
repo_root=$(dirname "$(dirname "$script_path")")
out=${out:-${PBTWAVE_CORPUS:-$repo_root/corpus}}
jobs=${PBTWAVE_JOBS:-2}
start_ns=$(date +%s%N)

# --- 1. Tools and source package (installed only when missing) -------------
missing=()
dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "build-corpus: need ${missing[*]}; run as root or install sudo, or: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "build-corpus: installing ${missing[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

sounds_dir=${PBTWAVE_SOUNDS_DIR:-/usr/share/asterisk/sounds/en_US_f_Allison}
if [ ! -d "$sounds_dir" ]; then
  echo "build-corpus: sound directory $sounds_dir not found; is $package installed? (set PBTWAVE_SOUNDS_DIR to override)" >&2
  exit 1
fi
package_version=$(dpkg-query -W -f='${Version}' "$package" 2>/dev/null || echo unknown)
ffmpeg_version=$(ffmpeg -hide_banner -version | head -n 1 | awk '{print $3}')
script_hash=$(sha256sum "$script_path" | cut -c1-16)
identity="package=$package $package_version; script=$script_hash; ffmpeg=$ffmpeg_version; rate=$sample_rate"

# --- 2. Which prompts: all speech, no tones / silence / sound effects -------
# The rule (documented in datasets/README.md):
#   silence/*                              pure silence (1..10 s)
#   beep*, *-2tone, confbridge-join/leave  beeps and tone sequences
#   tt-monkeys                             a sound effect (screeching monkeys)
#   *dialtone*, *dial-tone*, *ringtone*, *music*, moh*, *hold-music*
#                                          dial tones and hold music (none in
#                                          1.6.1, kept for other releases)
skip_reason() {
  # Sets $reason (empty: keep). No subshells: this runs for every prompt.
  local rel=$1 base
  base=${rel##*/}
  base=${base%.g722}
  reason=""
  case "$rel" in silence/*) reason="silence"; return ;; esac
  case "$base" in
    beep*|*-2tone|confbridge-join|confbridge-leave) reason="tone" ;;
    tt-monkeys) reason="sound effect" ;;
    *dialtone*|*dial-tone*|*ringtone*|*music*|moh*|*hold-music*) reason="music or dial tone" ;;
  esac
}

selected=()
skipped_lines=()
while IFS= read -r -d '' path; do
  rel=${path#"$sounds_dir"/}
  skip_reason "$rel"
  if [ -n "$reason" ]; then
    skipped_lines+=("$rel	$reason")
  else
    selected+=("$rel")
  fi
done < <(find "$sounds_dir" -type f -name '*.g722' -print0 | sort -z)
if [ ${#selected[@]} -eq 0 ]; then
  echo "build-corpus: no .g722 prompts under $sounds_dir" >&2
  exit 1
fi

# --- 3. Up to date? Then only check presence and print the summary ----------
summary() {
  awk -F'\t' -v out="$out" -v built="$1" '
    FNR == 1 { part++ }
    part == 1 && FNR == 1 { next }
    part == 1 { sec[$1] = $2; total += $2; n++; next }
    part == 2 { tn++; ts += sec[$0]; next }
    part == 3 { vn++; vs += sec[$0]; next }
    END {
      printf "corpus %s (%s)\n", out, built
      printf "  files: %d, %.2f minutes (%.1f s)\n", n, total / 60, total
      printf "  train: %d files, %.2f minutes (%.1f%%)\n", tn, ts / 60, 100 * ts / total
      printf "  validation: %d files, %.2f minutes (%.1f%%)\n", vn, vs / 60, 100 * vs / total
    }' "$out/manifest.tsv" "$out/train.txt" "$out/validation.txt"
  echo "  skipped: $(($(wc -l < "$out/skipped.tsv") - 1)) prompts (see skipped.tsv)"
}

manifest_files_present() {
  [ -f "$out/manifest.tsv" ] && [ -f "$out/train.txt" ] && [ -f "$out/validation.txt" ] && [ -f "$out/skipped.tsv" ] || return 1
  local file
  while IFS=$'\t' read -r file _; do
    [ -f "$out/$file" ] || return 1
  done < <(tail -n +2 "$out/manifest.tsv")
}

mkdir -p "$out"
if [ "$force" -eq 0 ] && [ -f "$out/.complete" ] && [ "$(cat "$out/.complete")" = "$identity" ] && manifest_files_present; then
  summary "up to date, nothing decoded"
  echo "  time: $(( ($(date +%s%N) - start_ns) / 1000000 )) ms"
  exit 0
fi

# --- 4. Decode (only what is missing under the current identity) -----------
# Checksums of the last build under this identity: a present file that no
# longer matches them was damaged after the build and is decoded again, so a
# rebuild never blesses a damaged file with a new checksum.
declare -A previous_sha=()
if [ "$force" -eq 0 ] && [ -f "$out/manifest.tsv" ] && [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$identity" ]; then
  while IFS=$'\t' read -r file _ _ hash; do
    previous_sha[$file]=$hash
  done < <(tail -n +2 "$out/manifest.tsv")
fi
rm -f "$out/.complete"
if [ "$force" -eq 1 ] || [ ! -f "$out/.stamp" ] || [ "$(cat "$out/.stamp")" != "$identity" ]; then
  # Another identity decoded these: remove every WAV listed by the old
  # manifest (and every WAV we would write), nothing else.
  if [ -f "$out/manifest.tsv" ]; then
    tail -n +2 "$out/manifest.tsv" | cut -f1 | while IFS= read -r f; do
      case "$f" in /*|*..*|'') ;; *.wav) rm -f "$out/$f" ;; esac
    done
  fi
  for rel in "${selected[@]}"; do rm -f "$out/${rel%.g722}.wav"; done
  printf '%s\n' "$identity" > "$out/.stamp.tmp" && mv "$out/.stamp.tmp" "$out/.stamp"
fi

to_decode=()
for rel in "${selected[@]}"; do
  [ -f "$out/${rel%.g722}.wav" ] || to_decode+=("$rel")
done

decode_one() {
  # $1: path relative to sounds_dir. Writes to a temporary file, then renames,
  # so a present WAV is always a complete one. -bitexact and no metadata make
  # the bytes (and so the checksums) depend only on the audio.
  local rel=$1 dst
  dst="$out/${rel%.g722}.wav"
  mkdir -p "$(dirname "$dst")"
  ffmpeg -nostdin -hide_banner -loglevel error -y \
    -f g722 -i "$sounds_dir/$rel" \
    -ar "$sample_rate" -ac 1 -c:a pcm_s16le \
    -map_metadata -1 -fflags +bitexact -flags:a +bitexact \
    -f wav "$dst.tmp.$$"
  mv "$dst.tmp.$$" "$dst"
}
export -f decode_one
export out sounds_dir sample_rate

if [ ${#to_decode[@]} -gt 0 ]; then
  echo "build-corpus: decoding ${#to_decode[@]} of ${#selected[@]} prompts with $jobs ffmpeg processes"
  printf '%s\0' "${to_decode[@]}" | xargs -0 -n 1 -P "$jobs" bash -c 'decode_one "$1"' _
fi

# --- 5. Manifest and split ----------------------------------------------------
# Sample count from the WAV's "data" chunk. ffmpeg -bitexact writes the
# canonical 44-byte header ("data" at byte 36), read with one `od`; anything
# else is walked chunk by chunk.
wav_samples() {
  local f=$1 offset=12 size id bytes b
  read -r -a b < <(od -An -v -t u1 -j 36 -N 8 "$f")
  if [ "${#b[@]}" -eq 8 ] && [ "${b[0]} ${b[1]} ${b[2]} ${b[3]}" = "100 97 116 97" ]; then
    echo $(( (b[4] | b[5] << 8 | b[6] << 16 | b[7] << 24) / 2 ))
    return 0
  fi
  size=$(stat -c %s "$f")
  while [ $((offset + 8)) -le "$size" ]; do
    id=$(dd if="$f" bs=1 skip="$offset" count=4 status=none)
    bytes=$(od -An -t u4 -j $((offset + 4)) -N 4 "$f" | tr -d ' ')
    if [ "$id" = "data" ]; then echo $((bytes / 2)); return 0; fi
    offset=$((offset + 8 + bytes + (bytes & 1)))
  done
  echo "build-corpus: no data chunk in $f" >&2
  return 1
}

# Validation iff the first 8 hex digits of sha256(<relative WAV path>), read
# as an unsigned integer, are 0..9 modulo 100: about 10 % of the files, stable
# across machines and independent of file order.
split_of() {
  local h
  h=$(printf '%s' "$1" | sha256sum)
  if [ $(( 16#${h:0:8} % 100 )) -lt 10 ]; then echo validation; else echo train; fi
}

wavs=()
for rel in "${selected[@]}"; do wavs+=("${rel%.g722}.wav"); done
declare -A sha
hash_files() {
  while read -r hash file; do
    sha[$file]=$hash
  done < <(cd "$out" && printf '%s\0' "$@" | xargs -0 sha256sum)
}
hash_files "${wavs[@]}"
changed=()
for w in "${wavs[@]}"; do
  if [ -n "${previous_sha[$w]:-}" ] && [ "${previous_sha[$w]}" != "${sha[$w]}" ]; then changed+=("$w"); fi
done
if [ ${#changed[@]} -gt 0 ]; then
  echo "build-corpus: ${#changed[@]} files changed since the last build; decoding them again: ${changed[*]}"
  for w in "${changed[@]}"; do
    rm -f "$out/$w"
    decode_one "${w%.wav}.g722"
  done
  hash_files "${changed[@]}"
  for w in "${changed[@]}"; do
    [ "${previous_sha[$w]}" = "${sha[$w]}" ] || echo "build-corpus: warning: $w decodes differently from the last build (is ffmpeg deterministic here?)" >&2
  done
fi

{
  printf 'file\tseconds\tsamples\tsha256\n'
  for w in "${wavs[@]}"; do
    n=$(wav_samples "$out/$w")
    secs=$(awk -v n="$n" -v r="$sample_rate" 'BEGIN { printf "%.4f", n / r }')
    printf '%s\t%s\t%s\t%s\n' "$w" "$secs" "$n" "${sha[$w]}"
  done
} > "$out/manifest.tsv.tmp"
: > "$out/train.txt.tmp"
: > "$out/validation.txt.tmp"
for w in "${wavs[@]}"; do
  echo "$w" >> "$out/$(split_of "$w").txt.tmp"
done
{
  printf 'source\treason\n'
  if [ ${#skipped_lines[@]} -gt 0 ]; then printf '%s\n' "${skipped_lines[@]}"; fi
} > "$out/skipped.tsv.tmp"
for f in manifest.tsv train.txt validation.txt skipped.tsv; do mv "$out/$f.tmp" "$out/$f"; done
printf '%s\n' "$identity" > "$out/.complete.tmp" && mv "$out/.complete.tmp" "$out/.complete"

summary "built: decoded ${#to_decode[@]} files; $identity"
echo "  time: $(( ($(date +%s%N) - start_ns) / 1000000 )) ms"
