"""Hugging Face models built from small configs (no downloads), at the configs' defaults
otherwise (use_cache on, as users build them); gradlint takes their inputs from each model's
``dummy_inputs``."""

from __future__ import annotations

import transformers

bert = transformers.BertModel(transformers.BertConfig(
    hidden_size=64, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
    vocab_size=1000))
gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(
    n_embd=64, n_layer=4, n_head=4, vocab_size=1000))
llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(
    hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
    num_key_value_heads=2, vocab_size=1000))
t5 = transformers.T5ForConditionalGeneration(transformers.T5Config(
    d_model=64, d_ff=128, d_kv=16, num_layers=3, num_decoder_layers=3, num_heads=4,
    vocab_size=1000))
