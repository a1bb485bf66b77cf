#!/usr/bin/env bash
# Fetches a second held-out set of real footage, none of it trained on or tuned on by any release,
# into DIR (default runs/heldout): four clips from Debian packages (needs apt-get and dpkg-deb,
# about 23 MB of downloads). Score a model on it with
#   vfi eval runs/heldout --max-pairs 40 --weights DIR
# (benchmarks/RESULTS.md, "Unseen footage"). Never choose a setting on it: it is a second opinion
# beside the eval clips, kept for that.
#   imageio_cockatoo.mp4      python3-imageio 2.4.1-5       1280x720 20 fps, handheld close-up of a bird
#   kivy_cityCC0.mpg          python-kivy-examples 2.1.0-1  720x405 25 fps, moving camera, city at night (CC0)
#   nodeopencv_motion.mov     node-opencv 7.0.0+git20200316 568x320 30 fps, a coin pushed by a pen
#   pdextendedview_diver.mov  pd-extendedview 0.5~repack-4  640x480 25 fps, handheld underwater, bubbles
set -euo pipefail
DIR=${1:-runs/heldout}
mkdir -p "$DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download python3-imageio python-kivy-examples node-opencv pd-extendedview >/dev/null)
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/x"; done
x="$tmp/x"
cp "$x/usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4" "$DIR/imageio_cockatoo.mp4"
cp "$x/usr/share/kivy-examples/widgets/cityCC0.mpg" "$DIR/kivy_cityCC0.mpg"
cp "$x/usr/share/doc/node-opencv/examples/files/motion.mov" "$DIR/nodeopencv_motion.mov"
cp "$x/usr/share/doc/pd-extendedview/media/diver.mov" "$DIR/pdextendedview_diver.mov"
ls -l "$DIR"
