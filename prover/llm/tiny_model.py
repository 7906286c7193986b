"""A tiny random-weight Llama, built offline, for tests and demos of the vLLM backend.

The model is NOT a prover: its weights are random, so it produces random Lean-flavoured text.
It exists so the real vLLM engine (AsyncLLM, continuous batching, n-sampling, logprobs, chat
templates) can be exercised end to end on a CPU without network access. Everything comes from
this file: a byte-level BPE tokenizer trained on an embedded Lean-ish corpus, a 2-layer
LlamaConfig, and weights drawn from a seeded generator and saved as safetensors.

Builds are cached by content hash under the directory you give, so repeated test runs reuse
one build:

    >>> model_dir = build_tiny_model(Path("/tmp/tiny"))           # doctest: +SKIP
    >>> sampler = VllmSampler.from_config(tiny_sampler_config(model_dir))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from prover.config import SamplerConfig
from prover.types import content_hash

__all__ = ["TINY_MODEL_SPEC", "build_tiny_model", "tiny_sampler_config"]

#: Bump when the recipe changes in a way the spec below does not capture.
_RECIPE_VERSION = "1"

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")

#: Chat template stored in tokenizer_config.json: role marker, content, EOS per turn.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

#: Model shape: head_dim = 128 / 4 = 32 (vLLM's CPU attention needs head_dim >= 32).
TINY_MODEL_SPEC: dict[str, Any] = {
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "initializer_range": 0.02,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
}

_CORPUS = """\
import Mathlib
import Aesop
set_option maxHeartbeats 400000
open BigOperators Real Nat Topology Rat
theorem mathd_algebra_10 (x : ℝ) (h₀ : x ≠ 0) : x / x = 1 := by
  field_simp
theorem mathd_numbertheory_3 : (∑ x in Finset.range 10, (x + 1) ^ 2) % 10 = 5 := by
  decide
theorem amc12_2000_p5 (x p : ℝ) (h₀ : x < 2) (h₁ : abs (x - 2) = p) : x - p = 2 * x - 2 := by
  have h₂ : abs (x - 2) = -(x - 2) := by
    apply abs_of_neg
    linarith
  rw [h₂] at h₁
  linarith
theorem imo_1959_p1 (n : ℕ) (h₀ : 0 < n) : Nat.gcd (21 * n + 4) (14 * n + 3) = 1 := by
  rw [Nat.gcd_comm]
  simp [Nat.gcd_rec]
  omega
lemma add_zero_right (n : Nat) : n + 0 = n := by
  induction n with
  | zero => rfl
  | succ k ih => simp
theorem sq_nonneg_sum (a b : ℝ) : 0 ≤ a ^ 2 + b ^ 2 := by
  nlinarith [sq_nonneg a, sq_nonneg b, sq_nonneg (a + b), sq_nonneg (a - b)]
example (p q : Prop) (hp : p) (hq : q) : p ∧ q := by
  constructor
  · exact hp
  · exact hq
theorem dvd_example (a b c : ℤ) (h₁ : a ∣ b) (h₂ : b ∣ c) : a ∣ c := by
  exact dvd_trans h₁ h₂
theorem mul_comm_example (m n : ℕ) : m * n = n * m := by
  ring
theorem exists_example : ∃ n : ℕ, n * n = 49 := by
  refine ⟨7, ?_⟩
  norm_num
theorem cases_example (x : ℤ) (h : x ^ 2 = 4) : x = 2 ∨ x = -2 := by
  have h' : (x - 2) * (x + 2) = 0 := by ring_nf; linarith
  rcases mul_eq_zero.mp h' with h₁ | h₁
  · left; linarith
  · right; linarith
-- The goal state is printed as hypotheses followed by the turnstile.
-- x : ℝ
-- h₀ : 0 < x
-- ⊢ 0 < x ^ 2 + 1
theorem pos_example (x : ℝ) (h₀ : 0 < x) : 0 < x ^ 2 + 1 := by
  positivity
Complete the following Lean 4 code with explanatory comments preceding each line of code:
```lean4
Here is a proof of the theorem using tactics such as simp, norm_num, linarith, nlinarith, omega.
"""


def build_tiny_model(directory: Path, *, seed: int = 0) -> Path:
    """Build (or reuse) the tiny random-weight Llama under `directory` and return its path.

    The result is a regular Hugging Face model directory (config.json, model.safetensors,
    tokenizer.json, tokenizer_config.json with a chat template) that vLLM loads from the local
    path. Builds are keyed by a hash of the recipe, spec and seed, and published atomically
    (build in a temporary sibling, then rename), so concurrent builders are safe.
    """
    directory = Path(directory)
    key = content_hash(_RECIPE_VERSION, json.dumps(TINY_MODEL_SPEC, sort_keys=True), _CORPUS,
                       CHAT_TEMPLATE, str(seed))[:16]
    target = directory / f"tiny-llama-{key}"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-llama-build-", dir=directory))
    try:
        vocab = _write_tokenizer(staging)
        _write_model(staging, vocab_size=vocab, seed=seed)
        staging.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "config.json").exists():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def tiny_sampler_config(model_dir: Path, **overrides: Any) -> SamplerConfig:
    """Safe settings to run the tiny model through VllmSampler on a small, shared CPU.

    A fixed 64 MiB KV cache (1 KiB per token at this size: 64k tokens, i.e. 32 full 2048-token
    contexts), eager mode (no torch.compile: startup in seconds, not minutes), float32 (exact
    reproducibility) and short default generations. `overrides` replace any field.
    """
    settings: dict[str, Any] = {
        "backend": "vllm",
        "model": str(model_dir),
        "temperature": 1.0,
        "top_p": 1.0,
        "max_tokens": 32,
        "seed": 0,
        "dtype": "float32",
        "max_model_len": 2048,
        "max_num_seqs": 128,
        "kv_cache_memory_bytes": 64 * 1024 * 1024,
        "enforce_eager": True,
        "enable_prefix_caching": True,
    }
    settings.update(overrides)
    return SamplerConfig(**settings)


def _write_tokenizer(out: Path) -> int:
    """Train a byte-level BPE on the embedded corpus; write tokenizer files. Returns vocab size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    special = [PAD, BOS, EOS, *ROLE_TOKENS]
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_MODEL_SPEC["vocab_size"],
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=1,
        show_progress=False,
    )
    lines = _CORPUS.splitlines()
    tokenizer.train_from_iterator(lines * 4, trainer=trainer, length=len(lines) * 4)
    bos_id = tokenizer.token_to_id(BOS)
    # Plain prompts get a BOS like Llama tokenizers; chat prompts carry it in the template.
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    tokenizer.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "unk_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        "model_max_length": TINY_MODEL_SPEC["max_position_embeddings"],
        "clean_up_tokenization_spaces": False,
        "additional_special_tokens": list(ROLE_TOKENS),
        "chat_template": CHAT_TEMPLATE,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (out / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": BOS, "eos_token": EOS, "pad_token": PAD}, indent=2),
        encoding="utf-8",
    )
    return tokenizer.get_vocab_size()


def _write_model(out: Path, *, vocab_size: int, seed: int) -> None:
    """Random LlamaForCausalLM weights from a seeded generator, saved as safetensors."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    spec = dict(TINY_MODEL_SPEC, vocab_size=vocab_size)
    rope_theta = spec.pop("rope_theta")
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
    vocab = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]
    ids = {token["content"]: token["id"] for token in vocab}
    config = LlamaConfig(
        **spec,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        bos_token_id=ids[tokenizer_config["bos_token"]],
        eos_token_id=ids[tokenizer_config["eos_token"]],
        pad_token_id=ids[tokenizer_config["pad_token"]],
        torch_dtype="float32",
    )
    config.architectures = ["LlamaForCausalLM"]
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)
    model.save_pretrained(out, safe_serialization=True)
    readme = (
        "# tiny-llama (random weights)\n\nA test/demo model built by `prover.llm.tiny_model`: "
        "random weights, produces random text. Not a prover model.\n"
    )
    (out / "README.md").write_text(readme, encoding="utf-8")
