#!/usr/bin/env bash
# Builds PBTWave's default speech corpus: every spoken prompt of Debian's
# asterisk-core-sounds-en-g722 (voice: Allison Smith, CC-BY-SA-3.0) as 16 kHz
# mono 16-bit WAV, plus a manifest and a deterministic train/validation split.
# See datasets/README.md.
#
# This script does only what `pbtwave corpus build` cannot: install the Debian
# package (and ffmpeg), leave out the prompts that are not speech (a name
# rule), and decode G.722, which libsndfile does not read, with ffmpeg into
# OUTPUT_DIR/.g722-decoded/. Then `pbtwave corpus build` writes the corpus
# from those WAVs: the same command that builds a corpus from your own audio.
#
# Usage: bash datasets/build-corpus.sh [--force] [OUTPUT_DIR]
#   OUTPUT_DIR  default: $PBTWAVE_CORPUS, else <repo>/corpus (gitignored)
#   --force     decode and convert every file again
# Environment:
#   PBTWAVE_CORPUS      output directory (when no OUTPUT_DIR argument)
#   PBTWAVE_SOUNDS_DIR  source directory (default: the package's en_US_f_Allison)
#   PBTWAVE_JOBS        parallel ffmpeg processes and conversion threads
#                       (default: every core)
#   PBTWAVE_BIN         the pbtwave binary (default: built here with
#                       `swift build -c release --product pbtwave`)
#
# Output (all paths in the lists are relative to OUTPUT_DIR): see
# `pbtwave corpus build --help` and datasets/README.md.
#   <prompt path>.wav   one per prompt, keeping the package's folder structure
#   manifest.tsv        header, then: file, seconds, samples, sha256 (of the WAV)
#   train.txt           files of the training split, one per line
#   validation.txt      files of the validation split, one per line
#   skipped.tsv         source prompts left out, with the reason
#   .g722-decoded/      ffmpeg's WAVs (kept, so a rebuild decodes nothing)
#
# Idempotent and resumable: ffmpeg writes each WAV to a temporary name and
# renames it, so a present file is complete and is not decoded again; a new
# package or ffmpeg version decodes everything again. `pbtwave corpus build`
# keeps its own journal and converts only what changed.
set -euo pipefail
export LC_ALL=C

package=asterisk-core-sounds-en-g722
sample_rate=16000

force=0
out=""
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "build-corpus: unknown option $arg (see --help)" >&2; exit 2 ;;
    *) [ -z "$out" ] || { echo "build-corpus: only one OUTPUT_DIR, got '$out' and '$arg'" >&2; exit 2; }
       out=$arg ;;
  esac
done
script_path=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
repo_root=$(dirname "$(dirname "$script_path")")
out=${out:-${PBTWAVE_CORPUS:-$repo_root/corpus}}
jobs=${PBTWAVE_JOBS:-$(nproc)}

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
  echo "build-corpus: no .g722 prompts under $sounds_dir; to build a corpus from other audio, use: pbtwave corpus build --from DIR --output $out" >&2
  exit 1
fi

# --- 3. Decode G.722 with ffmpeg (only what is missing) ----------------------
decoded="$out/.g722-decoded"
package_version=$(dpkg-query -W -f='${Version}' "$package" 2>/dev/null || echo unknown)
ffmpeg_version=$(ffmpeg -hide_banner -version | head -n 1 | awk '{print $3}')
identity="package=$package $package_version; ffmpeg=$ffmpeg_version; rate=$sample_rate; decode=1"
mkdir -p "$out"
if [ "$force" -eq 1 ] || [ ! -f "$decoded/.stamp" ] || [ "$(cat "$decoded/.stamp")" != "$identity" ]; then
  rm -rf "$decoded"
  rm -f "$out/.build-journal.tsv"
fi
mkdir -p "$decoded"
printf '%s\n' "$identity" > "$decoded/.stamp.tmp" && mv "$decoded/.stamp.tmp" "$decoded/.stamp"
# The layout of earlier versions of this script: its build identity files.
rm -f "$out/.stamp" "$out/.complete"

to_decode=()
for rel in "${selected[@]}"; do
  [ -f "$decoded/${rel%.g722}.wav" ] || to_decode+=("$rel")
done

decode_one() {
  # $1: path relative to sounds_dir. Writes to a temporary file, then renames,
  # so a present WAV is always a complete one. -bitexact and no metadata make
  # the bytes (and so the checksums) depend only on the audio.
  # The temporary name is hidden, so `corpus build` never reads a torn one.
  local rel=$1 dst tmp
  dst="$decoded/${rel%.g722}.wav"
  tmp="$(dirname "$dst")/.$(basename "$dst").tmp.$$"
  mkdir -p "$(dirname "$dst")"
  ffmpeg -nostdin -hide_banner -loglevel error -y \
    -f g722 -i "$sounds_dir/$rel" \
    -ar "$sample_rate" -ac 1 -c:a pcm_s16le \
    -map_metadata -1 -fflags +bitexact -flags:a +bitexact \
    -f wav "$tmp"
  mv "$tmp" "$dst"
}
export -f decode_one
export decoded sounds_dir sample_rate

if [ ${#to_decode[@]} -gt 0 ]; then
  echo "build-corpus: decoding ${#to_decode[@]} of ${#selected[@]} prompts with $jobs ffmpeg processes"
  printf '%s\0' "${to_decode[@]}" | xargs -0 -n 1 -P "$jobs" bash -c 'decode_one "$1"' _
fi

# --- 4. The corpus: pbtwave corpus build ------------------------------------
# The prompts left out by name go to skipped.tsv with their reason.
{
  printf 'source\treason\n'
  if [ ${#skipped_lines[@]} -gt 0 ]; then printf '%s\n' "${skipped_lines[@]}"; fi
} > "$decoded/.skipped-by-name.tsv"

pbtwave=$(bash "$repo_root/.ci/pbtwave-bin")

# --min-seconds 0: every prompt is speech, even a short "a" or "1".
"$pbtwave" corpus build --from "$decoded" --output "$out" --rate "$sample_rate" \
  --validation-percent 10 --min-seconds 0 --exclude "$decoded/.skipped-by-name.tsv" \
  --jobs "$jobs" --progress plain
