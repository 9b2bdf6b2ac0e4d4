#!/usr/bin/env bash
# The checks that need a real GPU, run on a lent machine through the device tool from the repo root, with
# the bundle `bench/device-pack.sh` makes carried: carry [".gl", ".devcarry"], command
#   bash bench/gpu-checks.sh [STEP…]      (default: env 8b small tests)
# Steps, each under its own time limit, logs and bench JSON written to $OUT as they go:
#   env    the GPU, the driver, the WebGPU adapter Deno finds
#   8b     deno task bench --shape llama3-8b (BF16, routers on 16–31) with a per-kernel profile
#   small  deno task bench on the default models (stories260K, its FlexiDepth twin, the demo, llama3-1b)
#   tests  the kernel, engine and FlexiDepth tests against the TypeScript reference, on this GPU
#   q8 q4  the llama3-8b shape with --quant; 1b-q8 1b-q4 the llama3-1b shape
#   dmtd   deno task bench --shape qwen3-4b: DMTD-Qwen3-4B's shape at full depth and τ = 2, 3, 4, 6
#   routing-tests  test/flexidepth.test.ts alone
# The last lines printed are a summary (the device tool returns the end of the output).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-checks}
mkdir -p "$OUT"
start=$(date +%s)
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(env 8b small tests)

# The bundle: loader packages, Deno, node_modules, the two real models where the bench looks for them.
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
mkdir -p /tmp/deno-bin
[ -x /tmp/deno-bin/deno ] && [ -s /tmp/deno-bin/deno ] || { xz -dc .devcarry/deno.xz >/tmp/deno-bin/deno.part && chmod +x /tmp/deno-bin/deno.part && mv /tmp/deno-bin/deno.part /tmp/deno-bin/deno; }
[ -d node_modules ] || tar -xJf .devcarry/nm.tar.xz
mkdir -p ../shared
[ -d ../shared/models ] || cp -r .devcarry/models ../shared/models
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
# Nothing outside the machine answers there: a registry look-up fails at once instead of timing out.
export NPM_CONFIG_REGISTRY=http://127.0.0.1:9/
export PATH=/tmp/deno-bin:$PATH DENO_NO_UPDATE_CHECK=1 XDG_RUNTIME_DIR=/tmp FLEXIDEPTH_NO_PROGRESS=1
summary=()

# run NAME LIMIT_S COMMAND…: one step, its output to the screen and $OUT/NAME.log.
run() {
  local name=$1 limit=$2 t0 rc
  shift 2
  t0=$(date +%s)
  echo "=== $name (limit ${limit}s, at +$((t0 - start))s)"
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  rc=${PIPESTATUS[0]}
  summary+=("$name: exit $rc in $(($(date +%s) - t0))s")
}

for step in "${steps[@]}"; do
  case $step in
  env)
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.memory --format=csv | tee "$OUT/env.log"
    run adapter 60 deno eval 'import { describeAdapter, openGpu } from "./src/gpu/device.ts";
      console.log(describeAdapter(await openGpu()));'
    ;;
  8b) run bench-8b 200 deno run --allow-all bench/bench.ts --shape llama3-8b --repeat 2 --profile --out "$OUT/bench-8b.json" ;;
  small) run bench-small 150 deno run --allow-all bench/bench.ts --repeat 3 --out "$OUT/bench-small.json" ;;
  tests)
    run tests 240 deno test --allow-all test/matmul*.test.ts test/kernels.test.ts test/rope_heads.test.ts \
      test/sample*.test.ts test/quant.test.ts test/engine.test.ts test/flexidepth.test.ts
    ;;
  q8 | q4)
    run "bench-8b-$step" 150 deno run --allow-all bench/bench.ts --shape llama3-8b --repeat 2 --profile --quant "$step" \
      --out "$OUT/bench-8b-$step.json"
    ;;
  1b-q8 | 1b-q4)
    run "bench-$step" 100 deno run --allow-all bench/bench.ts --shape llama3-1b --repeat 2 --quant "${step#1b-}" \
      --out "$OUT/bench-$step.json"
    ;;
  dmtd)
    run bench-qwen3-4b 200 deno run --allow-all bench/bench.ts --shape qwen3-4b --decode-only --repeat 3 \
      --out "$OUT/bench-qwen3-4b.json"
    ;;
  routing-tests) run routing-tests 120 deno test --allow-all test/flexidepth.test.ts ;;
  *) echo "unknown step $step" ;;
  esac
done

echo
echo "=== summary (+$(($(date +%s) - start))s)"
printf '%s\n' "${summary[@]}"
for f in "$OUT"/bench-*.log; do
  [ -f "$f" ] || continue
  echo "--- $(basename "$f")"
  grep -E "^[a-z0-9].*(shape|K|default|random)|prefill|decode after|window|routing|speed-up|GPU objects|profile|DMTD|τ =|where it goes" "$f" | head -40
done
grep -E "^(ok|FAILED) \|" "$OUT/tests.log" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g'
