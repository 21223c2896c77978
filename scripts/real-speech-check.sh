#!/usr/bin/env bash
# The real-speech check of issue 17: a trained recogniser (CTC or RNN-T)
# transcribes the 12 recordings of Debian's pocketsphinx-testdata (`unidl data
# speech-testdata`: playing cards, a LibriVox reading, "go forward ten
# meters", a TIDIGITS digit string); `unidl eval` prints WER and CER and
# writes every transcript.
#
# Usage: scripts/real-speech-check.sh [CONFIG] [OUT]
#   CONFIG  the recogniser's run config (default configs/conformer_spoken_digits.toml)
#   OUT     folder for the derived config and the records (default runs/real-speech-<config stem>)
# Environment: UNIDL (default target/release/unidl), BEAM (beam width, default the config's).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-configs/conformer_spoken_digits.toml}
stem=$(basename "$CONFIG" .toml)
OUT=${2:-runs/real-speech-$stem}
UNIDL=${UNIDL:-target/release/unidl}
"$UNIDL" data speech-testdata --if-missing
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
best=$(sed -n 's|^output_dir = "\(.*\)"|\1|p' "$CONFIG")/checkpoints/best
cfg="$OUT/recognizer.toml"
sed -e 's|^val = .*|val = "data:speech-testdata/test.jsonl"|' \
    -e "s|^output_dir = .*|output_dir = \"$OUT\"|" "$CONFIG" > "$cfg"
if [ -n "${BEAM:-}" ]; then
    if grep -q '^beam_width' "$cfg"; then
        sed -i -e "s|^beam_width = .*|beam_width = $BEAM|" "$cfg"
    else
        sed -i -e "s|^\[task\]|[task]\nbeam_width = $BEAM|" "$cfg"
        grep -q '^\[task\]' "$cfg" || printf '\n[task]\nbeam_width = %s\n' "$BEAM" >> "$cfg"
    fi
fi
"$UNIDL" eval --config "$cfg" --weights "$PWD/$best"
echo "transcripts: $OUT/eval/predictions.jsonl"
