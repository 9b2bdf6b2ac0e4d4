#!/usr/bin/env bash
# Packs what a lent GPU machine (the device tool) lacks into the git-ignored folders that travel with a call:
#   .devcarry/  deno.xz (this machine's Deno binary), nm.tar.xz (node_modules), models/ (../shared/models)
#   .gl/        the Vulkan and GL loader packages (the GPU machine has the NVIDIA driver but no loader)
# Then, through the device tool: carry [".gl", ".devcarry"], command `bash bench/gpu-checks.sh STEP…`.
set -euo pipefail
cd "$(dirname "$0")/.."

deno=$(command -v deno || true)
[ -n "$deno" ] || deno=$(npx -y deno@2.9.6 eval 'console.log(Deno.execPath())')
[ -d node_modules ] || npx -y deno@2.9.6 install

mkdir -p .devcarry .gl
[ -f .devcarry/deno.xz ] || xz -T2 -6 -c "$deno" >.devcarry/deno.xz
tar -cJf .devcarry/nm.tar.xz node_modules
rm -rf .devcarry/models && cp -r ../shared/models .devcarry/models
(cd .gl && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
du -sh .devcarry .gl
