#!/usr/bin/env bash
# Speech synthesis closed by recognition (issue 17): the trained WaveNet
# vocoder (configs/wavenet_spoken_digits.toml) speaks N digit strings — text
# to frames by unit selection from its [task] voice_bank, frames to waveform
# by WaveNet — and the trained Conformer (configs/conformer_spoken_digits.toml)
# transcribes the generated WAVs; `unidl eval` prints their WER and CER.
#
# Usage: scripts/synthesis-by-recognition.sh [N] [VOICE] [OUT]
#   N      digit strings (default 20; 2-5 words each, drawn from a fixed seed)
#   VOICE  the voice bank's speaker (default: the vocoder config's)
#   OUT    folder for the WAVs, the manifest and the records (default runs/synthesis-check)
# Environment: UNIDL (default target/release/unidl), VOCODER, RECOGNIZER (configs),
#   BANK (a manifest of single-word recordings, default the vocoder config's),
#   TEMPERATURE (WaveNet's sampling temperature, default the vocoder config's),
#   RECOGNIZER_WEIGHTS (a checkpoint, default the recogniser run's best).
# Both models must be trained first (cargo xtask train --config …).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
VOICE=${2:-}
OUT=${3:-runs/synthesis-check}
UNIDL=${UNIDL:-target/release/unidl}
VOCODER=${VOCODER:-configs/wavenet_spoken_digits.toml}
RECOGNIZER=${RECOGNIZER:-configs/conformer_spoken_digits.toml}
mkdir -p "$OUT/wav"
OUT=$(cd "$OUT" && pwd)

# the vocoder config, with the voice / bank overridden when asked
voc="$OUT/vocoder.toml"
sed -e "s|^output_dir = \"|output_dir = \"$PWD/|" "$VOCODER" > "$voc"
if [ -n "$VOICE" ]; then
    sed -i -e "s|^voice = .*|voice = \"$VOICE\"|" "$voc"
fi
if [ -n "${TEMPERATURE:-}" ]; then
    sed -i -e "s|^temperature = .*|temperature = $TEMPERATURE|" "$voc"
fi
if [ -n "${BANK:-}" ]; then
    sed -i -e "s|^voice_bank = .*|voice_bank = \"$BANK\"|" "$voc"
fi

# N distinct strings of 2-5 digit words from a fixed seed
words=(zero one two three four five six seven eight nine)
RANDOM=17
declare -A seen
texts=()
while [ "${#texts[@]}" -lt "$N" ]; do
    n=$((2 + RANDOM % 4))
    t=""
    for _ in $(seq "$n"); do t="$t ${words[$((RANDOM % 10))]}"; done
    t=${t# }
    if [ -z "${seen[$t]:-}" ]; then
        seen[$t]=1
        texts+=("$t")
    fi
done

args=()
for t in "${texts[@]}"; do args+=(--text "$t"); done
"$UNIDL" infer --config "$voc" "${args[@]}" --out "$OUT/wav"

: > "$OUT/test.jsonl"
for t in "${texts[@]}"; do
    printf '{"path": "wav/%s.wav", "transcript": "%s"}\n' "${t// /_}" "$t" >> "$OUT/test.jsonl"
done

# the recogniser's config reading the generated WAVs, its records under OUT
rec="$OUT/recognizer.toml"
best=${RECOGNIZER_WEIGHTS:-$PWD/$(sed -n 's|^output_dir = "\(.*\)"|\1|p' "$RECOGNIZER")/checkpoints/best}
sed -e "s|^val = .*|val = \"$OUT/test.jsonl\"|" \
    -e "s|^output_dir = .*|output_dir = \"$OUT/recognizer\"|" "$RECOGNIZER" > "$rec"
"$UNIDL" eval --config "$rec" --weights "$best"
echo "transcripts: $OUT/recognizer/eval/predictions.jsonl"
