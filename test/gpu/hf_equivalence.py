#!/usr/bin/env python3
"""Equivalence of `fr-spec export` with Hugging Face transformers (run on the GPU host).

Builds small random checkpoints with transformers (LlamaForCausalLM with llama3 rope scaling,
Qwen2ForCausalLM with tied embeddings) and a random EAGLE-1/2 head, exports them with
`node bin/fr-spec export` (fp32 and fp16), runs the exported graphs with python onnxruntime and
compares against transformers:

  * target: hidden states (after the final norm), argmax and the new K/V rows for a prompt, then
    hidden states and argmax for a tree-masked verification batch fed the exported prompt K/V;
  * lm_head.onnx: top-k log-probs and ids over transformers' hidden states;
  * eagle.onnx: the head's output for a prompt (fed the target's features), then a tree step over
    the exported K/V. The reference is transformers' LlamaDecoderLayer with the input norm removed.

Prints a table; exits 1 if any check fails (relative error = max|a-b| / max|ref|; limits 1e-4 for
fp32 and 2e-2 for fp16 exports, whose reference uses the same weights rounded to fp16).

Usage: python test/gpu/hf_equivalence.py [--work DIR] [--keep] [--provider cpu|cuda]
Needs torch, transformers (5.x; 4.4x works too), safetensors, onnxruntime, numpy; node (FR_SPEC_NODE
or PATH) with the project's node_modules, and `export` registered in src/cli/main.ts.
"""
import argparse
import copy
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort
import torch
import transformers
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LIMITS = {"fp32": 1e-4, "fp16": 2e-2}
NUMPY_DTYPES = {"fp32": np.float32, "fp16": np.float16}
MASK_MIN = float(np.finfo(np.float32).min)
TOP_K = 8

PROMPT_LENGTH = 40
# A draft tree in topological order: node i's parent (-1 = root, which follows the prompt).
TREE_PARENTS = [-1, 0, 0, 0, 1, 1, 2, 4, 4, 5, 7, 9]


# ------------------------------------------------------------------------------------------------
# Random checkpoints

def uses_rope_parameters():
    """transformers 5.x folds rope_theta / rope_scaling into rope_parameters."""
    return "rope_parameters" in inspect.signature(LlamaConfig.__init__).parameters


def rope_kwargs(theta, scaling=None):
    if uses_rope_parameters():
        return {"rope_parameters": {"rope_type": "default", **(scaling or {}), "rope_theta": theta}}
    return {"rope_theta": theta, "rope_scaling": scaling}


def randomize(module, seed):
    """Weights large enough that attention is far from uniform and logits are well separated."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if "norm" in name:
                param.copy_(1 + 0.1 * noise)
            elif name.endswith("bias"):
                param.copy_(0.1 * noise)
            elif "embed_tokens" in name:
                param.copy_(noise)
            else:
                param.copy_(noise / param.shape[-1] ** 0.5)


def eager(config):
    config._attn_implementation = "eager"
    return config


def llama_target(seed):
    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
    config = LlamaConfig(
        vocab_size=1000, hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=8,
        num_key_value_heads=2, rms_norm_eps=1e-5, tie_word_embeddings=False, max_position_embeddings=4096,
        **rope_kwargs(500000.0, scaling),
    )
    model = LlamaForCausalLM(eager(config)).eval()
    randomize(model, seed)
    return model


def qwen2_target(seed):
    config = Qwen2Config(
        vocab_size=1000, hidden_size=256, intermediate_size=384, num_hidden_layers=3, num_attention_heads=8,
        num_key_value_heads=2, rms_norm_eps=1e-6, tie_word_embeddings=True, max_position_embeddings=4096,
        use_sliding_window=False, **rope_kwargs(1000000.0),
    )
    model = Qwen2ForCausalLM(eager(config)).eval()
    randomize(model, seed)
    return model


class EagleHead(torch.nn.Module):
    """EAGLE-1/2 draft head: fc([embed; feature]) then decoder layers, layer 0 without input norm."""

    def __init__(self, config, target_embedding):
        super().__init__()
        self.config = config
        self.embed_tokens = target_embedding
        self.fc = torch.nn.Linear(2 * config.hidden_size, config.hidden_size, bias=True)
        self.layers = torch.nn.ModuleList([LlamaDecoderLayer(config, layer_idx=0)])
        self.layers[0].input_layernorm = torch.nn.Identity()
        self.rotary = LlamaRotaryEmbedding(config=config)

    def forward(self, input_ids, feature, position_ids, additive_mask):
        x = self.fc(torch.cat([self.embed_tokens(input_ids), feature], dim=-1))
        cos_sin = self.rotary(x, position_ids)
        for layer in self.layers:
            out = layer(x, attention_mask=additive_mask, position_ids=position_ids, position_embeddings=cos_sin)
            x = out[0] if isinstance(out, tuple) else out
        return x


def eagle_head(target, seed):
    t = target.config
    config = LlamaConfig(
        vocab_size=t.vocab_size, hidden_size=t.hidden_size, intermediate_size=384, num_hidden_layers=1,
        num_attention_heads=8, num_key_value_heads=2, rms_norm_eps=1e-5, max_position_embeddings=4096,
        **rope_kwargs(500000.0),
    )
    head = EagleHead(eager(config), target.model.embed_tokens).eval()
    randomize(head.fc, seed)
    randomize(head.layers, seed + 1)
    return head


def save_eagle(head, folder):
    """EAGLE's own layout: fc.*, layers.0.* (no input_layernorm), config.json with "bias"."""
    os.makedirs(folder)
    tensors = {f"fc.{k}": v for k, v in head.fc.state_dict().items()}
    tensors.update({f"layers.0.{k}": v for k, v in head.layers[0].state_dict().items()})
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(folder, "model.safetensors"))
    config = {k: v for k, v in head.config.to_dict().items() if not k.startswith("_")}
    config.update({"bias": True, "architectures": ["LlamaForCausalLM"]})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


# ------------------------------------------------------------------------------------------------
# Running both sides

def export(node, args):
    command = [node, os.path.join(REPO, "bin", "fr-spec"), "export", *args, "--quiet"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"export failed ({' '.join(command)}):\n{result.stderr}")


def tree_depths():
    depths = []
    for parent in TREE_PARENTS:
        depths.append(0 if parent < 0 else depths[parent] + 1)
    return depths


def tree_path(node):
    path = []
    while node >= 0:
        path.insert(0, node)
        node = TREE_PARENTS[node]
    return path


def additive_mask(rows, past, visible):
    mask = np.zeros((1, 1, rows, past + rows), dtype=np.float32)
    for i in range(rows):
        for j in range(rows):
            if not visible(i, j):
                mask[0, 0, i, past + j] = MASK_MIN
    return mask


def causal_mask(rows, past=0):
    return additive_mask(rows, past, lambda i, j: j <= i)


def tree_mask(past):
    return additive_mask(len(TREE_PARENTS), past, lambda i, j: j in tree_path(i))


def rounded(module, dtype):
    """The module as an fp16 export holds it: weights rounded to fp16, computed in fp32.

    Only parameters are rounded: buffers such as RoPE's inv_freq stay fp32, as in the export."""
    if dtype == "fp32":
        return module
    copied = copy.deepcopy(module)
    with torch.no_grad():
        for param in copied.parameters():
            param.copy_(param.half().float())
    return copied


def cache_layer(cache, layer):
    """(keys, values) [1, kvH, T, D] of one layer, across transformers' cache APIs."""
    if hasattr(cache, "layers"):
        return cache.layers[layer].keys, cache.layers[layer].values
    if hasattr(cache, "key_cache"):
        return cache.key_cache[layer], cache.value_cache[layer]
    return cache[layer][0], cache[layer][1]


class Table:
    def __init__(self):
        self.rows = []

    def error(self, model, dtype, graph, case, quantity, actual, expected):
        actual = np.asarray(actual, dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
        assert actual.shape == expected.shape, f"{graph} {case} {quantity}: shape {actual.shape} vs {expected.shape}"
        error = float(np.max(np.abs(actual - expected)) / max(float(np.max(np.abs(expected))), 1e-30))
        self.rows.append((model, dtype, graph, case, quantity, f"{error:.2e}", f"< {LIMITS[dtype]:.0e}", error < LIMITS[dtype]))

    def mismatches(self, model, dtype, graph, case, quantity, actual_ids, reference_scores):
        """Ids must equal the reference's best wherever the reference's top two are clearly apart."""
        scores = np.asarray(reference_scores, dtype=np.float64)
        top2 = np.sort(scores, axis=-1)[:, -2:]
        margin = 4 * LIMITS[dtype] * float(np.max(np.abs(scores)))
        clear = (top2[:, 1] - top2[:, 0]) > margin
        wrong = int(np.sum((np.asarray(actual_ids) != np.argmax(scores, axis=-1)) & clear))
        self.rows.append((model, dtype, graph, case, quantity, f"{wrong} of {int(clear.sum())}", "0", wrong == 0))

    def print(self):
        header = ("model", "dtype", "graph", "case", "quantity", "error", "limit", "ok")
        cells = [header] + [tuple(str(c) if not isinstance(c, bool) else ("yes" if c else "NO") for c in row) for row in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        for n, row in enumerate(cells):
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
            if n == 0:
                print("  ".join("-" * width for width in widths))

    def passed(self):
        return all(row[-1] for row in self.rows)


class Graphs:
    def __init__(self, folder, provider):
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if provider == "cuda" else ["CPUExecutionProvider"]
        self.folder = folder
        self.config = json.load(open(os.path.join(folder, "config.json")))
        self.np_dtype = np.float16 if self.config["dtype"] == "float16" else np.float32
        self.sessions = {}
        for name in ("target", "eagle", "lm_head"):
            entry = self.config.get(name)
            if entry:
                self.sessions[name] = ort.InferenceSession(os.path.join(folder, entry["file"]), providers=providers)

    def decoder(self, name, ids, positions, mask, past_keys, past_values, feature=None):
        feeds = {
            "input_ids": np.asarray([ids], dtype=np.int64),
            "position_ids": np.asarray([positions], dtype=np.int64),
            "attention_bias": mask,
        }
        for i, (k, v) in enumerate(zip(past_keys, past_values)):
            feeds[f"past_key_{i}"] = k.astype(self.np_dtype)
            feeds[f"past_value_{i}"] = v.astype(self.np_dtype)
        if feature is not None:
            feeds["feature"] = feature.astype(self.np_dtype)
        session = self.sessions[name]
        return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))

    def empty_past(self, name):
        arch = self.config[name]["architecture"]
        shape = (1, 0, arch["num_kv_heads"], arch["head_dim"])
        layers = arch["num_layers"]
        return [np.zeros(shape, self.np_dtype) for _ in range(layers)], [np.zeros(shape, self.np_dtype) for _ in range(layers)]

    def head(self, hidden, k):
        session = self.sessions["lm_head"]
        ids, logprobs = session.run(["topk_ids", "topk_logprobs"], {"hidden": hidden.astype(self.np_dtype), "top_k": np.asarray([k], dtype=np.int64)})
        return ids, logprobs


# ------------------------------------------------------------------------------------------------
# Checks

def check_target(table, label, dtype, model, graphs, prompt, tree_tokens):
    reference = rounded(model, dtype)
    layers = model.config.num_hidden_layers
    with torch.no_grad():
        ref = reference.model(input_ids=torch.tensor([prompt]), use_cache=True)
        ref_hidden = ref.last_hidden_state[0]
        ref_logits = reference.lm_head(ref_hidden)

    past_keys, past_values = graphs.empty_past("target")
    out = graphs.decoder("target", prompt, list(range(len(prompt))), causal_mask(len(prompt)), past_keys, past_values)
    table.error(label, dtype, "target", "prompt", "hidden", out["hidden"][0], ref_hidden)
    table.mismatches(label, dtype, "target", "prompt", "argmax", out["argmax"][0], ref_logits)
    try:
        for i in range(layers):
            keys, values = cache_layer(ref.past_key_values, i)
            table.error(label, dtype, "target", "prompt", f"new_key_{i}", out[f"new_key_{i}"][0], keys[0].transpose(0, 1))
            table.error(label, dtype, "target", "prompt", f"new_value_{i}", out[f"new_value_{i}"][0], values[0].transpose(0, 1))
    except (AttributeError, IndexError, TypeError) as error:
        print(f"note: K/V not compared for {label} {dtype}: this transformers' cache API is unknown ({error})")

    # Tree verification over the exported prompt K/V; the reference runs each node's path causally.
    depths = tree_depths()
    past_keys = [out[f"new_key_{i}"] for i in range(layers)]
    past_values = [out[f"new_value_{i}"] for i in range(layers)]
    positions = [len(prompt) + d for d in depths]
    tree = graphs.decoder("target", tree_tokens, positions, tree_mask(len(prompt)), past_keys, past_values)
    with torch.no_grad():
        node_hidden = torch.stack([
            reference.model(input_ids=torch.tensor([prompt + [tree_tokens[n] for n in tree_path(node)]])).last_hidden_state[0, -1]
            for node in range(len(tree_tokens))
        ])
        node_logits = reference.lm_head(node_hidden)
    table.error(label, dtype, "target", "tree", "hidden", tree["hidden"][0], node_hidden)
    table.mismatches(label, dtype, "target", "tree", "argmax", tree["argmax"][0], node_logits)

    # The draft LM head graph is the target's head: top-k of log-softmax over the full vocabulary.
    ids, logprobs = graphs.head(ref_hidden.numpy(), TOP_K)
    ref_logprobs = torch.log_softmax(ref_logits, dim=-1)
    table.error(label, dtype, "lm_head", "prompt rows", "top-k log-probs", logprobs, torch.topk(ref_logprobs, TOP_K).values)
    table.mismatches(label, dtype, "lm_head", "prompt rows", "top-1 id", ids[:, 0], ref_logits)
    return ref_hidden


def check_eagle(table, label, dtype, head, graphs, prompt, tree_tokens, features):
    reference = rounded(head, dtype)
    feature_in = features.numpy()
    held_features = torch.from_numpy(feature_in.astype(graphs.np_dtype).astype(np.float32))[None]
    n = len(prompt)
    # EAGLE pairs token t+1 with the target's feature at t; any ids serve for equivalence.
    ids = prompt[1:] + [tree_tokens[0]]
    with torch.no_grad():
        ref_out = reference(torch.tensor([ids]), held_features, torch.arange(n)[None], torch.from_numpy(causal_mask(n)))[0]
    past_keys, past_values = graphs.empty_past("eagle")
    out = graphs.decoder("eagle", ids, list(range(n)), causal_mask(n), past_keys, past_values, feature=feature_in[None])
    table.error(label, dtype, "eagle", "prompt", "out", out["out"][0], ref_out)

    # A tree step over the exported K/V; the reference recomputes prompt + tree with one mask.
    rng = np.random.default_rng(5)
    tree_features = rng.standard_normal((len(tree_tokens), features.shape[-1])).astype(np.float32)
    depths = tree_depths()
    positions = [n + d for d in depths]
    tree = graphs.decoder("eagle", tree_tokens, positions, tree_mask(n), [out["new_key_0"]], [out["new_value_0"]], feature=tree_features[None])
    full_mask = np.full((1, 1, n + len(tree_tokens), n + len(tree_tokens)), MASK_MIN, dtype=np.float32)
    full_mask[:, :, :n, :n] = causal_mask(n)
    full_mask[:, :, n:, :] = tree_mask(n)
    all_features = torch.cat([held_features[0], torch.from_numpy(tree_features.astype(graphs.np_dtype).astype(np.float32))])[None]
    with torch.no_grad():
        ref_tree = reference(torch.tensor([ids + tree_tokens]), all_features, torch.tensor([list(range(n)) + positions]), torch.from_numpy(full_mask))[0, n:]
    table.error(label, dtype, "eagle", "tree", "out", tree["out"][0], ref_tree)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", help="folder for checkpoints and exports (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--provider", choices=["cpu", "cuda"], default="cpu", help="onnxruntime provider for the exported graphs")
    args = parser.parse_args()
    node = os.environ.get("FR_SPEC_NODE", "node")
    work = args.work or tempfile.mkdtemp(prefix="fr-spec-hf-")
    os.makedirs(work, exist_ok=True)
    torch.manual_seed(0)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, onnxruntime {ort.__version__}, work folder {work}")

    llama = llama_target(1)
    qwen2 = qwen2_target(2)
    eagle = eagle_head(llama, 3)
    llama.save_pretrained(os.path.join(work, "hf-llama"), max_shard_size="1MB")
    qwen2.save_pretrained(os.path.join(work, "hf-qwen2"))
    save_eagle(eagle, os.path.join(work, "hf-eagle"))
    saved = json.load(open(os.path.join(work, "hf-llama", "config.json")))
    print("llama config.json rope fields:", {k: saved[k] for k in ("rope_theta", "rope_scaling", "rope_parameters") if k in saved})

    rng = np.random.default_rng(0)
    prompt = [int(t) for t in rng.integers(0, 1000, PROMPT_LENGTH)]
    tree_tokens = [int(t) for t in rng.integers(0, 1000, len(TREE_PARENTS))]
    table = Table()
    # --ops fused (the default) needs ai.onnx opset 23 (Attention, RotaryEmbedding): onnxruntime 1.23 or later.
    ort_version = tuple(int(part) for part in ort.__version__.split(".")[:2])
    op_sets = ("standard", "fused") if ort_version >= (1, 23) else ("standard",)
    if op_sets == ("standard",):
        print(f"python onnxruntime {ort.__version__} predates opset 23: checking --ops standard only")
    for ops in op_sets:
        for dtype in ("fp32", "fp16"):
            llama_dir = os.path.join(work, f"llama-{ops}-{dtype}")
            qwen2_dir = os.path.join(work, f"qwen2-{ops}-{dtype}")
            flags = ["--dtype", dtype, "--ops", ops, "--force"]
            export(node, ["--target", os.path.join(work, "hf-llama"), "--eagle", os.path.join(work, "hf-eagle"), "--out", llama_dir, *flags])
            export(node, ["--target", os.path.join(work, "hf-qwen2"), "--out", qwen2_dir, *flags])
            llama_graphs = Graphs(llama_dir, args.provider)
            features = check_target(table, f"llama ({ops})", dtype, llama, llama_graphs, prompt, tree_tokens)
            check_eagle(table, f"llama+eagle ({ops})", dtype, eagle, llama_graphs, prompt, tree_tokens, features)
            check_target(table, f"qwen2 ({ops})", dtype, qwen2, Graphs(qwen2_dir, args.provider), prompt, tree_tokens)

    table.print()
    if not args.keep and not args.work:
        shutil.rmtree(work)
    print("PASS" if table.passed() else "FAIL")
    sys.exit(0 if table.passed() else 1)


if __name__ == "__main__":
    main()
