#!/usr/bin/env bash
# Installs onnxruntime-node's CUDA execution provider (CUDA 13 build of ONNX Runtime 1.29.0) on a GPU host
# that has network access. The default `npm install` skips this download (see .npmrc) so that installs work
# offline; hosts without network use the offline kit described in docs/gpu.md instead.
set -euo pipefail
cd "$(dirname "$0")/.."
ONNXRUNTIME_NODE_INSTALL=cuda12 npm_config_onnxruntime_node_install=cuda12 \
  node node_modules/onnxruntime-node/script/install.js
ls -l node_modules/onnxruntime-node/bin/napi-v6/linux/x64/
node -e "const ort=require('onnxruntime-node'); console.log(JSON.stringify(ort.listSupportedBackends()))"
