#!/usr/bin/env bash
# Set up, then stylise the bundled example images into out/. Works offline: without
# cached VGG19 weights, `--weights auto` falls back to the offline encoder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
mkdir -p out
# --overwrite: running the script again replaces its own results in out/.
painterly stylize examples/content/tubingen_neckarfront.jpg src/painterly/paintings/van_gogh_starry_night.jpg -o out/tubingen_starry_night.png --overwrite
painterly stylize examples/content/chelsea_cat.png src/painterly/paintings/hokusai_great_wave.jpg -o out/cat_great_wave.png --overwrite
painterly stylize examples/content/spacex_falcon9_dscovr_launch.jpg src/painterly/paintings/kandinsky_composition_vii.jpg -o out/rocket_kandinsky.png --overwrite
echo "results in out/"
