#!/usr/bin/env bash
# Regenerates the README's screenshots from the real control room: `ward demo --screenshots`
# runs the engine with its synthetic traffic and faults for ~50 s, draws every view off-screen
# with the same code the terminal shows, and writes SVG + text; rsvg-convert makes the PNGs.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
command -v rsvg-convert >/dev/null 2>&1 || missing+=(librsvg2-bin)
fc-list 2>/dev/null | grep -q "DejaVu Sans Mono" || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
./target/release/ward demo --screenshots "$out"
for svg in "$out"/*.svg; do
  name=$(basename "$svg" .svg)
  rsvg-convert --format png --output "screenshots/$name.png" "$svg"
  cp "$out/$name.txt" "screenshots/$name.txt"
done
ls -1 screenshots/*.png
